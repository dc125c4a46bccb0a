"""`stackwatch handlers`: where each handler is in the stored event stream (owner, handled, backlog)."""

from __future__ import annotations

from typing import Annotated

import typer

from stackwatch.cli.common import friendly_errors, open_store_for, settings
from stackwatch.cli.output import OutputFormat, print_json, print_table, short_time


@friendly_errors
def handlers(
    format: Annotated[OutputFormat, typer.Option("--format", help="table or json")] = OutputFormat.table,
) -> None:
    """Each handler's position per provider: which process holds it, events handled, events waiting."""
    from stackwatch.store.stream import handler_status

    store = open_store_for(settings())
    try:
        rows = handler_status(store.engine)
    finally:
        store.dispose()
    if format is OutputFormat.json:
        print_json(rows)
        return
    print_table(
        "handlers",
        ["handler", "provider", "owner", "handled", "waiting", "updated"],
        [(r["handler"], r["partition"], r["owner"], r["handled"],
          f"{r['backlog']}+" if r["backlog_capped"] else r["backlog"], short_time(r["updated_at"])) for r in rows],
    )
