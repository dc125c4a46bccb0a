"""`stackwatch devcloud up|down|status`: a disposable real OpenStack on 127.0.0.1 (see docs/devcloud.md)."""

from __future__ import annotations

import json

import typer

from stackwatch import devcloud
from stackwatch.cli.common import ConfigGroup
from stackwatch.cli.output import LazyConsole

app = typer.Typer(
    cls=ConfigGroup,
    help="A real OpenStack on 127.0.0.1 (Keystone, Glance, Neutron API, Placement, Nova with the fake "
    "driver), installed once into cached virtualenvs. For trying stackwatch without a cloud, and for tests.",
    no_args_is_help=True,
)
console = LazyConsole(stderr=True)
_WITH_HELP = "Optional service to add (repeatable): swift (Swift with Keystone auth, an object-store endpoint)."


def _print_env(info: devcloud.DevCloud) -> None:
    from rich.console import Console

    out = Console()
    out.print(f"export OS_CLIENT_CONFIG_FILE={info.clouds_yaml}", highlight=False, soft_wrap=True)
    out.print(f"export OS_CLOUD={info.cloud}", highlight=False)
    out.print(
        f"# AMQP (Nova notifications, exchange 'nova'): {info.amqp_url}", highlight=False, soft_wrap=True
    )


@app.command()
def up(
    fresh: bool = typer.Option(False, "--fresh", help="Restart clean even if a healthy devcloud is running."),
    timeout: float = typer.Option(180.0, help="Seconds to wait for each service."),
    json_out: bool = typer.Option(
        False, "--json", help="Print the paths/URLs as JSON instead of shell lines."
    ),
    with_: list[str] = typer.Option([], "--with", help=_WITH_HELP),
) -> None:
    """Install (once) and start a clean devcloud; print OS_CLIENT_CONFIG_FILE, OS_CLOUD and the AMQP URL."""
    try:
        with console.status("devcloud: starting", spinner="dots") as st:

            def report(msg: str) -> None:
                console.log(msg)
                st.update(f"devcloud: {msg}")

            info = devcloud.up(report=report, fresh=fresh, timeout=timeout, services=with_)
    except devcloud.DevcloudError as e:
        console.print(f"[red]devcloud up failed[/red]: {e}")
        raise typer.Exit(1) from None
    if json_out:
        typer.echo(json.dumps(info.to_json(), indent=2))
    else:
        _print_env(info)


@app.command()
def install(with_: list[str] = typer.Option([], "--with", help=_WITH_HELP)) -> None:
    """Only install (or verify) the cached service virtualenvs; start nothing. For CI pre-install steps."""
    try:
        with console.status("devcloud: installing", spinner="dots") as st:

            def report(msg: str) -> None:
                console.log(msg)
                st.update(f"devcloud: {msg}")

            venvs = devcloud.install(report=report, services=with_)
    except devcloud.DevcloudError as e:
        console.print(f"[red]devcloud install failed[/red]: {e}")
        raise typer.Exit(1) from None
    console.print(f"devcloud services installed in {venvs}")


@app.command()
def down() -> None:
    """Stop every devcloud process by the PID it recorded (state is kept until the next `up`)."""
    stopped = devcloud.down(report=lambda m: console.log(m))
    console.print("devcloud stopped" if stopped else "devcloud was not running")


@app.command()
def status(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Report each service: PID, running, HTTP answer, log. Exit status 0 only when everything is up."""
    from rich.console import Console
    from rich.table import Table

    st = devcloud.status()
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "up": st.up,
                    "services": [s.__dict__ for s in st.services],
                    "cloud": st.cloud.to_json() if st.cloud else None,
                },
                indent=2,
            )
        )
    else:
        table = Table(title="devcloud " + ("[green]up[/green]" if st.up else "[red]not up[/red]"))
        for col in ("service", "pid", "running", "answers"):
            table.add_column(col, no_wrap=True)
        table.add_column("log", overflow="fold")
        for s in st.services:
            answers = "-" if s.url is None else (str(s.http_status) if s.http_status else "[red]no[/red]")
            table.add_row(s.name, str(s.pid or "-"), "yes" if s.running else "[red]no[/red]", answers, s.log)
        Console().print(table)
        if st.up and st.cloud:
            _print_env(st.cloud)
    raise typer.Exit(0 if st.up else 1)
