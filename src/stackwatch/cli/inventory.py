"""`stackwatch inventory <kind>`: what the last refreshes found, one command per kind (table or JSON)."""

from __future__ import annotations

from typing import Annotated

import typer

from stackwatch.cli.common import friendly_errors, open_store_for, settings
from stackwatch.cli.output import OutputFormat, print_json, print_table
from stackwatch.inventory import query
from stackwatch.inventory.kinds import KINDS, Kind

app = typer.Typer(
    help="The inventory kept by `stackwatch refresh` and the event handlers (deleted objects with --deleted).",
    no_args_is_help=True,
)

FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="table or json")]
ProviderOpt = Annotated[str | None, typer.Option("--provider", "-p", help="only this provider")]
DeletedOpt = Annotated[bool, typer.Option("--deleted", help="include objects found deleted (deleted_at set)")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="at most this many rows")]

TABLE_COLUMNS = 6
#: table columns where the first fields of the kind are not the useful ones (JSON always has every field)
TABLE_OVERRIDES = {"servers": ("id", "name", "status", "power_state", "host", "flavor_name")}


def show(kind: Kind, provider: str | None, deleted: bool, fmt: OutputFormat, limit: int | None) -> None:
    cfg = settings()
    store = open_store_for(cfg)
    try:
        docs = query.items(store.engine, kind, provider=provider, deleted=deleted, limit=limit)
    finally:
        store.dispose()
    if fmt == OutputFormat.json:
        print_json(docs)
        return
    columns = list(TABLE_OVERRIDES.get(kind.name, ()))
    columns = columns or [c for c in kind.fields if c not in ("addresses", "metadata", "fixed_ips")][:TABLE_COLUMNS]
    columns += ["provider"] + (["deleted_at"] if deleted else [])
    print_table(f"{kind.name} ({len(docs)})", columns, ([d.get(c) for c in columns] for d in docs))


def _command(kind: Kind):
    @friendly_errors
    def command(
        provider: ProviderOpt = None,
        deleted: DeletedOpt = False,
        fmt: FormatOpt = OutputFormat.table,
        limit: LimitOpt = None,
    ) -> None:
        show(kind, provider, deleted, fmt, limit)

    command.__doc__ = f"List {kind.name.replace('_', ' ')} ({kind.service} service)."
    return command


for _kind in KINDS:
    app.command(_kind.name.replace("_", "-"))(_command(_kind))
    if "_" in _kind.name:
        app.command(_kind.name, hidden=True)(_command(_kind))
app.command("vms", hidden=True)(_command(KINDS[1]))
