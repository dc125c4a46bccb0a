"""`stackwatch provider add|list|remove|check`: the configured providers (clouds).

`check NAME` says which event monitor would run for the provider and why each other one would not, and
warns when `events.monitor: auto` finds nothing that catches events. `add|list|remove` edit the
configuration file (provider_admin.py).
"""

from __future__ import annotations

from typing import Annotated

import typer

from stackwatch.cli import provider_admin
from stackwatch.cli.common import ConfigGroup, friendly_errors, settings
from stackwatch.cli.output import OutputFormat, console, err_console, print_json, print_table

app = typer.Typer(cls=ConfigGroup, help="Configured providers (clouds).", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Configured providers (clouds)."""


app.command("add")(provider_admin.add)
app.command("list")(provider_admin.list_providers)
app.command("remove")(provider_admin.remove)


@app.command("check")
@friendly_errors
def check(
    name: Annotated[str, typer.Argument(help="provider name")],
    probe: Annotated[bool, typer.Option("--probe/--no-probe", help="also try to reach the selected source")] = True,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="table or json")] = OutputFormat.table,
) -> None:
    """Which event monitor would run for NAME, and why the others would not. Exit 1: none can run;
    3: the probe failed."""
    from stackwatch.events.monitors.registry import MonitorSelectionError, explain, load_monitors, select

    prov = settings().provider(name)
    monitors = load_monitors()
    try:
        selection = select(prov, monitors)
    except MonitorSelectionError as exc:
        if format is OutputFormat.json:
            print_json({"provider": name, "requested": prov.events.monitor, "selected": None, "error": str(exc)})
        else:
            err_console.print(f"[red]no monitor:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    rows = explain(selection, monitors)
    live = selection.monitor.probe(prov) if probe else None
    if format is OutputFormat.json:
        print_json({
            "provider": name,
            "requested": selection.requested,
            "selected": selection.name,
            "warning": selection.warning,
            "monitors": [{"name": n, "priority": p, "verdict": why} for n, p, why in rows],
            "probe": None if live is None else {"ok": live.ok, "reason": live.reason},
        })
    else:
        console.print(f"provider [bold]{name}[/bold]: events.monitor = {selection.requested} -> "
                      f"[bold green]{selection.name}[/bold green]", highlight=False)
        print_table(None, ["monitor", "priority", "verdict"], rows)
        if selection.warning:
            console.print(f"[yellow]warning:[/yellow] {selection.warning}", highlight=False)
        if live is not None:
            colour = "green" if live.ok else "yellow"
            console.print(f"probe: [{colour}]{'ok' if live.ok else 'failed'}[/{colour}] {live.reason}",
                          highlight=False)
    if live is not None and not live.ok:
        raise typer.Exit(3)
