"""`stackwatch refresh PROVIDER [--full | --target vm:UUID ...]`: bring the inventory up to date now."""

from __future__ import annotations

from typing import Annotated

import typer

from stackwatch.cli.common import friendly_errors, open_store_for, settings
from stackwatch.cli.output import err_console, print_table


@friendly_errors
def refresh(
    provider: Annotated[str, typer.Argument(help="configured provider name")],
    full: Annotated[bool, typer.Option("--full", help="list every kind (the default without --target)")] = False,
    target: Annotated[
        list[str] | None, typer.Option("--target", "-t", help="KIND:ID to fetch, e.g. vm:UUID (repeatable)")
    ] = None,
) -> None:
    """Full refresh (every kind the cloud has) or a targeted one (only the given objects; 404 = deleted)."""
    from stackwatch.inventory import refresh as engine
    from stackwatch.inventory.connect import ProviderConnectError, connect

    if full and target:
        raise typer.BadParameter("use either --full or --target")
    try:
        targets = [engine.parse_target(t) for t in target or []]
    except (ValueError, KeyError) as exc:
        raise typer.BadParameter(str(exc.args[0])) from None
    cfg = settings()
    try:
        conn = connect(cfg.provider(provider))
    except ProviderConnectError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    store = open_store_for(cfg)
    try:
        if targets:
            result = engine.targeted_refresh(store.engine, provider, conn, targets)
        else:
            result = engine.full_refresh(store.engine, provider, conn)
    finally:
        store.dispose()
        conn.close()
    rows = [
        (k, r.listed, r.created, r.updated, r.deleted, r.restored, r.skipped or "") for k, r in result.kinds.items()
    ]
    print_table(
        f"{result.mode} refresh of {provider}: {result.api_calls} API calls, {result.seconds:.2f} s",
        ["kind", "listed", "created", "updated", "deleted", "restored", "note"],
        rows,
    )
