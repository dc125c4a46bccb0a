"""`stackwatch events ...`: ingest files through the whole pipeline, list, count, show, timeline, quarantine."""

from __future__ import annotations

import contextlib
import os
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from stackwatch.cli.common import friendly_errors, open_reader_for, open_store_for, routes_for, settings
from stackwatch.cli.output import OutputFormat, console, err_console, print_json, print_table, short_time

if TYPE_CHECKING:  # pragma: no cover - imported where used: `events count` must not load the intake
    from stackwatch.store.reads import EventQuery

app = typer.Typer(help="The event stream: ingest, list, count, show, timeline, quarantine.", no_args_is_help=True)

FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="table or json")]
_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(value: str | None, option: str) -> datetime | None:
    """ISO 8601 / oslo timestamp, or a relative age such as `15m`, `2h`, `7d` (meaning that long ago)."""
    from stackwatch.events.timestamps import TimestampError, parse_timestamp

    if value is None:
        return None
    match = _RELATIVE.match(value.strip())
    if match:
        return datetime.now(UTC) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        return parse_timestamp(value)
    except TimestampError as exc:
        raise typer.BadParameter(f"{exc} (use ISO 8601 or an age like 2h, 7d)", param_hint=option) from None


@app.command()
@friendly_errors
def ingest(
    paths: Annotated[list[str], typer.Argument(help="files: one JSON object, a JSON array or JSON lines; - is stdin")],
    provider: Annotated[str, typer.Option(help="provider the events belong to")] = "default",
    format: FormatOpt = OutputFormat.table,
    writer: Annotated[str, typer.Option(help="auto, thread or process: write in a child process (a second core); "
                                             "auto does for files of 32 MiB and more")] = "auto",
) -> None:
    """Run notification files through the whole pipeline: convert, filter, de-duplicate, store or quarantine."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from stackwatch.events.catcher import Catcher
    from stackwatch.events.files import iter_raw_messages
    from stackwatch.events.pipeline import catch_all
    from stackwatch.gctune import tune_for_intake

    cfg = settings()
    if writer not in ("auto", "thread", "process"):
        raise typer.BadParameter(f"{writer!r} is not auto, thread or process", param_hint="--writer")
    # a bulk load into PostgreSQL goes faster with concurrent in-process transactions (bench/RESULTS.md)
    bulk = _input_bytes(paths) >= 32 << 20 and cfg.database_url.startswith("sqlite")
    store = open_store_for(cfg, long_running=bulk, writer=writer)
    catcher = Catcher(store, cfg.provider_or_default(provider), routes_for(cfg))
    tune_for_intake()
    show_progress = format is OutputFormat.table and err_console.is_terminal
    with Progress(
        TextColumn("[bold]ingest"), BarColumn(), TextColumn("{task.completed} messages"), TimeElapsedColumn(),
        console=err_console, disable=not show_progress, transient=True,
    ) as progress:
        task = progress.add_task("ingest", total=None)
        try:
            total = catch_all(
                catcher, iter_raw_messages(paths), catcher.provider.events.batch_size,
                on_batch=lambda report: progress.advance(task, report.received),
            )
        finally:
            store.dispose()
    counts = total.as_dict()
    if format is OutputFormat.json:
        print_json(counts)
    else:
        console.print(
            f"stored {counts['stored']}, duplicate {counts['duplicates']}, quarantined {counts['quarantined']}, "
            f"filtered {counts['filtered']}, collapsed {counts['collapsed']} (of {counts['received']} messages)"
        )


def _input_bytes(paths: list[str]) -> int:
    """Total size of the named files (stdin and unreadable paths count 0: the reader reports those)."""
    total = 0
    for path in paths:
        with contextlib.suppress(OSError):
            total += 0 if path == "-" else os.path.getsize(path)
    return total


def _query(
    provider: str | None, vm: str | None, host: str | None, project: str | None, type_glob: str | None,
    group: str | None, since: str | None, until: str | None, limit: int,
) -> EventQuery:
    from stackwatch.events.model import GROUPS
    from stackwatch.store.reads import EventQuery

    if group and group not in GROUPS:
        raise typer.BadParameter(f"{group!r} is not one of {', '.join(GROUPS)}", param_hint="--group")
    return EventQuery(
        provider=provider, vm=vm, host=host, project=project, type_glob=type_glob, group=group,
        since=parse_when(since, "--since"), until=parse_when(until, "--until"), limit=limit,
    )


@app.command("list")
@friendly_errors
def list_events(
    provider: Annotated[str | None, typer.Option(help="provider name")] = None,
    vm: Annotated[str | None, typer.Option(help="instance uuid")] = None,
    host: Annotated[str | None, typer.Option(help="compute host")] = None,
    project: Annotated[str | None, typer.Option(help="project id")] = None,
    type: Annotated[str | None, typer.Option("--type", help="event type or glob, e.g. 'compute.instance.*'")] = None,
    group: Annotated[str | None, typer.Option(help="timeline group")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time or age (2h, 7d)")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time or age")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """The latest events matching the filters, oldest first. `collapsed` (+N): identical events flood
    control counted onto this one instead of storing each; every caught event is a row or in a count."""
    cfg = settings()
    events = open_reader_for(cfg).query(_query(provider, vm, host, project, type, group, since, until, limit))
    if format is OutputFormat.json:
        print_json([ev.to_json_dict() for ev in events])
        return
    print_table(
        None,
        ["time", "provider", "event_type", "group", "level", "vm", "project", "message_id", "collapsed"],
        [
            (short_time(ev.timestamp or ev.received_at), ev.provider, ev.event_type, ev.group, ev.level,
             ev.vm_ref, ev.project_id, ev.message_id, _collapsed(ev.collapsed_count))
            for ev in events
        ],
    )


def _collapsed(count: int) -> str:
    """"+N" when flood control counted N more identical events onto this one (events/flood.py), else empty."""
    return f"+{count:,}" if count else ""


@app.command()
@friendly_errors
def count(provider: Annotated[str | None, typer.Option(help="provider name")] = None) -> None:
    """Print the number of stored events."""
    typer.echo(open_reader_for(settings()).count(provider))


@app.command()
@friendly_errors
def show(
    message_id: str,
    provider: Annotated[str | None, typer.Option(help="provider name")] = None,
    format: FormatOpt = OutputFormat.json,
) -> None:
    """One event with its whole payload."""
    event = open_reader_for(settings()).get(message_id, provider)
    if event is None:
        err_console.print(f"[red]error:[/red] no event with message_id {message_id!r}")
        raise typer.Exit(1)
    doc = event.to_json_dict()
    if format is OutputFormat.json:
        print_json(doc)
    else:
        print_table(None, ["field", "value"], [(k, v) for k, v in doc.items() if k != "payload"])


@app.command()
@friendly_errors
def timeline(
    vm: Annotated[str | None, typer.Option(help="instance uuid")] = None,
    host: Annotated[str | None, typer.Option(help="compute host")] = None,
    project: Annotated[str | None, typer.Option(help="project id")] = None,
    provider: Annotated[str | None, typer.Option(help="provider name")] = None,
    group: Annotated[str | None, typer.Option(help="only this group")] = None,
    since: Annotated[str | None, typer.Option(help="ISO time or age (2h, 7d)")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time or age")] = None,
    detail: Annotated[bool, typer.Option(help="include detail-level events")] = True,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 500,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """Events of a VM, host, project or provider in time order, one column per timeline group."""
    if not any((vm, host, project, provider)):
        raise typer.BadParameter("give --vm, --host, --project or --provider", param_hint="--vm")
    cfg = settings()
    store = open_store_for(cfg)
    changes: list[dict] = []
    if vm:
        from stackwatch.inventory.timeline import AmbiguousReference, resolve_vm, vm_changes

        try:
            vm = resolve_vm(store.engine, vm, provider)
        except AmbiguousReference as exc:
            raise typer.BadParameter(str(exc), param_hint="--vm") from None
        changes = vm_changes(store.engine, vm, provider)
    events = store.query(_query(provider, vm, host, project, None, group, since, until, limit))
    if not detail:
        events = [ev for ev in events if ev.level == "critical"]
    from stackwatch.events.model import GROUPS

    groups = [g for g in GROUPS if any(ev.group == g for ev in events)]
    if format is OutputFormat.json:
        print_json(
            {
                "vm": vm, "host": host, "project": project, "provider": provider,
                "groups": {g: sum(1 for ev in events if ev.group == g) for g in groups},
                "events": [ev.to_json_dict() for ev in events],
                "changes": changes,
            }
        )
        return
    title = "timeline " + " ".join(f"{k}={v}" for k, v in (("vm", vm), ("host", host), ("project", project),
                                                          ("provider", provider)) if v)
    print_table(
        title,
        ["time", "group", "event_type", "level"],
        [(short_time(ev.timestamp or ev.received_at), ev.group, ev.event_type, ev.level) for ev in events],
    )
    summary = ", ".join(f"{g} {sum(1 for ev in events if ev.group == g)}" for g in groups)
    console.print(f"{len(events)} events: {summary}")
    if changes:
        print_table(
            "inventory changes", ["time", "action", "fields"],
            [(c["at"][:19].replace("T", " "), c["action"], ", ".join(sorted(c["changes"] or {}))) for c in changes],
        )


@app.command()
@friendly_errors
def quarantine(
    provider: Annotated[str | None, typer.Option(help="provider name")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    raw: Annotated[bool, typer.Option(help="include the raw bytes (JSON output only)")] = False,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """Input that could not become an event, with the reason; nothing is dropped silently."""
    records = open_store_for(settings()).quarantined(provider, limit)
    if format is OutputFormat.json:
        docs = []
        for r in records:
            doc = {"id": r.id, "provider": r.provider, "source": r.source, "received_at": r.received_at,
                   "reason": r.reason, "size": r.size, "sha256": r.digest}
            if raw:
                doc["raw"] = r.raw.decode("utf-8", "backslashreplace")
            docs.append(doc)
        print_json(docs)
        return
    print_table(
        None, ["id", "received", "provider", "source", "size", "reason"],
        [(r.id, short_time(r.received_at), r.provider, r.source, r.size, r.reason[:160]) for r in records],
    )


@app.command()
@friendly_errors
def purge(
    older_than: Annotated[str, typer.Option(help="age such as 30d, or an ISO time")],
    provider: Annotated[str | None, typer.Option(help="provider name")] = None,
    batch_size: Annotated[int, typer.Option(min=100, max=100_000)] = 5000,
) -> None:
    """Delete events older than the given age, in bounded batches."""
    cutoff = parse_when(older_than, "--older-than")
    deleted = open_store_for(settings()).purge(cutoff, batch_size=batch_size, provider=provider)
    typer.echo(f"purged {deleted} events older than {cutoff.isoformat()}")
