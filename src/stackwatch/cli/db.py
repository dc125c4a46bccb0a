"""`stackwatch db ...`: schema migrations (also run automatically on start)."""

from __future__ import annotations

import typer

from stackwatch.cli.common import ConfigGroup, friendly_errors, settings
from stackwatch.masking import mask_url

app = typer.Typer(cls=ConfigGroup, help="Database schema.", no_args_is_help=True)


@app.command()
@friendly_errors
def upgrade() -> None:
    """Migrate the database to the latest schema."""
    from stackwatch.store.db import current_revision, make_engine
    from stackwatch.store.db import upgrade as run_upgrade

    cfg = settings()
    engine = make_engine(cfg.database_url)
    run_upgrade(engine)
    revision, _head = current_revision(engine)
    typer.echo(f"{mask_url(cfg.database_url)} at revision {revision}")


@app.command()
@friendly_errors
def current() -> None:
    """Show the database's schema revision and the code's."""
    from stackwatch.store.db import current_revision, make_engine

    cfg = settings()
    revision, head = current_revision(make_engine(cfg.database_url))
    typer.echo(f"database: {revision or 'empty'}  code: {head}")
