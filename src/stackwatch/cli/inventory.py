"""`stackwatch inventory <kind>`: what the last refreshes found, one command per kind (table or JSON).

A kind is listed under its plural name (`servers`, `floating-ips`) and also answers to the singular and to
its aliases (`server`, `vm`, `vms`, `floating_ip`), resolved through `kinds.kind_named`, so the names the
docs use (`stackwatch inventory vm`) and the ones an operator guesses both work.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stackwatch.cli.common import ConfigGroup, friendly_errors, open_store_for, settings
from stackwatch.cli.output import OutputFormat, print_json, print_table
from stackwatch.inventory.kinds import KINDS, Kind, kind_named

FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="table or json")]
ProviderOpt = Annotated[str | None, typer.Option("--provider", "-p", help="only this provider")]
DeletedOpt = Annotated[bool, typer.Option("--deleted", help="include objects found deleted (deleted_at set)")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="at most this many rows")]

TABLE_COLUMNS = 6
#: table columns where the first fields of the kind are not the useful ones (JSON always has every field)
TABLE_OVERRIDES = {"servers": ("id", "name", "status", "power_state", "host", "flavor_name")}


def command_name(kind: Kind) -> str:
    return kind.name.replace("_", "-")


def find_kind(name: str) -> Kind | None:
    """The kind `name` means: its name or an alias, with `-` or `_`, singular or plural."""
    for candidate in (name, f"{name}s", name.removesuffix("s")):
        try:
            return kind_named(candidate)
        except KeyError:
            continue
    return None


class KindGroup(ConfigGroup):
    """Lists one command per kind; any other name that `find_kind` understands runs that kind's command."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            kind = find_kind(cmd_name)
            command = super().get_command(ctx, command_name(kind)) if kind else None
        return command


app = typer.Typer(
    cls=KindGroup,
    help="The inventory kept by `stackwatch refresh` and the event handlers (deleted objects with --deleted).",
    no_args_is_help=True,
)


def show(kind: Kind, provider: str | None, deleted: bool, fmt: OutputFormat, limit: int | None) -> None:
    from stackwatch.inventory import query

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


def _command(kind: Kind):  # noqa: ANN202 - a typer command function
    @friendly_errors
    def command(
        provider: ProviderOpt = None,
        deleted: DeletedOpt = False,
        fmt: FormatOpt = OutputFormat.table,
        limit: LimitOpt = None,
    ) -> None:
        show(kind, provider, deleted, fmt, limit)

    aliases = ", ".join(dict.fromkeys(a.replace("_", "-") for a in kind.aliases))
    also = f"; also: {aliases}" if aliases else ""
    command.__doc__ = f"List {kind.name.replace('_', ' ')} ({kind.service} service{also})."
    return command


for _kind in KINDS:
    app.command(command_name(_kind))(_command(_kind))
