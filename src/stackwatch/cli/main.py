"""The `stackwatch` command: global options, then one sub-command group per part, registered explicitly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from stackwatch import __version__
from stackwatch.cli import (
    db,
    devcloud,
    events,
    fleece,
    handlers,
    inventory,
    provider,
    provider_admin,
    refresh,
    serve,
    worker,
)
from stackwatch.config.settings import ENV_CONFIG

app = typer.Typer(
    name="stackwatch",
    help="Agentless, event-driven management engine for OpenStack clouds.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

def _version(value: bool) -> None:
    if value:
        typer.echo(f"stackwatch {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML configuration (or $STACKWATCH_CONFIG)")
    ] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    from stackwatch.logs import setup_logging

    setup_logging()  # every command logs masked JSON lines, at $STACKWATCH_LOG_LEVEL when set
    if config is not None:
        os.environ[ENV_CONFIG] = str(config)


app.add_typer(events.app, name="events")
app.add_typer(db.app, name="db")
app.command("serve")(serve.serve)
app.command("demo")(serve.demo)

provider.app.command("add")(provider_admin.add)
provider.app.command("list")(provider_admin.list_providers)
provider.app.command("remove")(provider_admin.remove)
app.add_typer(provider.app, name="provider")
app.add_typer(inventory.app, name="inventory")
app.command("refresh")(refresh.refresh)
app.command("handlers")(handlers.handlers)
app.command("fleece")(fleece.fleece)
app.add_typer(worker.app, name="worker")
app.add_typer(devcloud.app, name="devcloud")
