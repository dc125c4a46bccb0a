"""`stackwatch metrics vm|host|project REF`: rollups captured from Gnocchi (table or JSON), and
`stackwatch metrics capture --provider P`: one capture cycle now (the loop runs in `serve` / `worker metrics`)."""

from __future__ import annotations

from typing import Annotated

import typer

from stackwatch.cli.common import ConfigGroup, friendly_errors, open_store_for, settings
from stackwatch.cli.output import OutputFormat, console, err_console, print_json, print_table

app = typer.Typer(cls=ConfigGroup, help="Metrics captured from Gnocchi: 5-minute, hourly and daily rollups.",
                  no_args_is_help=True)

SinceOpt = Annotated[str, typer.Option("--since", help="periods starting at or after: an age (24h, 7d) or ISO time")]
GranularityOpt = Annotated[str, typer.Option("--granularity", "-g", help="5m, hourly or daily")]
FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="table or json")]
ProviderOpt = Annotated[str | None, typer.Option("--provider", "-p", help="only this provider")]
MetricOpt = Annotated[list[str] | None, typer.Option("--metric", "-m", help="only these metrics (repeat)")]


def _show(scope: str, ref: str, since: str, granularity: str, fmt: OutputFormat, provider: str | None,
          metric: list[str] | None) -> None:
    from stackwatch.metrics.query import MetricsQueryError, granularity_seconds, resolve_instance, rows, since_time

    cfg = settings()
    store = open_store_for(cfg)
    try:
        try:
            seconds = granularity_seconds(granularity)
            start = since_time(since)
            if scope == "vm":
                ref, _project = resolve_instance(store.engine, ref, provider)
        except MetricsQueryError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None
        found = rows(store.engine, scope, ref, seconds, start, provider, metric)
    finally:
        store.dispose()
    if fmt == OutputFormat.json:
        print_json(found)
        return
    print_table(f"{scope} {ref}: {granularity} since {start.isoformat(timespec='seconds')} ({len(found)} rows)",
                ["metric", "timestamp", "avg", "max", "unit"],
                ([r["metric"], r["timestamp"], f"{r['avg']:.6g}", f"{r['max']:.6g}", r["unit"]] for r in found))


#: scope -> (what REF is, the command's help)
SCOPES = {
    "vm": ("instance uuid or name", "One instance's rollups (deleted instances keep their history)."),
    "host": ("hypervisor host name", "A host's rollups: cpu_util averaged over its instances, the rest summed."),
    "project": ("project id", "A project's rollups: cpu_util averaged over its instances, the rest summed."),
}


def _scope_command(scope: str, ref_help: str, doc: str):  # noqa: ANN202 - a typer command function
    @friendly_errors
    def command(ref: str, since: SinceOpt = "24h",
                granularity: GranularityOpt = "hourly", fmt: FormatOpt = OutputFormat.table,
                provider: ProviderOpt = None, metric: MetricOpt = None) -> None:
        _show(scope, ref, since, granularity, fmt, provider, metric)

    command.__doc__ = doc
    # set here, not in the signature: annotations are strings (PEP 563) and `ref_help` is not a global
    command.__wrapped__.__annotations__["ref"] = Annotated[str, typer.Argument(help=ref_help)]
    return command


for _scope, (_ref_help, _doc) in SCOPES.items():
    app.command(_scope)(_scope_command(_scope, _ref_help, _doc))


@app.command("capture")
@friendly_errors
def capture(provider: Annotated[str, typer.Option("--provider", "-p", help="provider with a metrics section")],
            fmt: FormatOpt = OutputFormat.table) -> None:
    """Run one capture cycle now and print what it did (requests, instances, points, seconds)."""
    from stackwatch.metrics.capture import Capture
    from stackwatch.metrics.gnocchi import GnocchiError

    cfg = settings()
    prov = cfg.provider(provider)
    if prov.metrics is None:
        err_console.print(f"[red]error:[/red] provider {provider} has no metrics section", highlight=False)
        raise typer.Exit(2)
    store = open_store_for(cfg)
    job = Capture(prov, store.engine)
    try:
        report = job.cycle()
    except GnocchiError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        job.close()
        store.dispose()
    if fmt == OutputFormat.json:
        print_json(report.as_dict())
        return
    console.print(f"{provider}: {report.instances} instances, {report.batches} batches, {report.requests} requests, "
                  f"{report.points} points, {report.seconds:.2f} s (until {report.until.isoformat()})")
