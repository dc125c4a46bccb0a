"""`stackwatch token create|list|revoke`: local API tokens for `api.auth.tokens: true`.

`create` prints the token once (stdout, nothing else there, so `TOKEN=$(stackwatch token create ...)` works);
the store keeps only its SHA-256 (api/auth/tokens.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from stackwatch.cli.common import ConfigGroup, friendly_errors, open_store_for, settings
from stackwatch.cli.output import OutputFormat, err_console, print_json, print_table, short_time

app = typer.Typer(cls=ConfigGroup, help="Local API tokens (sent as `Authorization: Bearer TOKEN`).",
                  no_args_is_help=True)


def _tokens():  # noqa: ANN202
    from stackwatch.api.auth.tokens import LocalTokens

    store = open_store_for(settings())
    return store, LocalTokens(store.engine)


@app.command()
@friendly_errors
def create(
    role: Annotated[str, typer.Option(help="admin, operator or viewer")],
    project: Annotated[str | None, typer.Option(help="the project an operator or viewer acts in")] = None,
    name: Annotated[str | None, typer.Option(help="a name to list and revoke it by")] = None,
    expires_days: Annotated[float | None, typer.Option(help="expire after this many days (default: never)")] = None,
) -> None:
    """Create a token and print it (once: only its hash is stored)."""
    from stackwatch.api.auth.tokens import TokenError

    store, tokens = _tokens()
    expires = datetime.now(UTC) + timedelta(days=expires_days) if expires_days else None
    try:
        token, info = tokens.create(role, project, name, expires)
    except TokenError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    finally:
        store.dispose()
    typer.echo(token)
    err_console.print(f"token {info.name!r} ({info.role}{', project ' + info.project_id if info.project_id else ''}) "
                      "created; it is shown only this once", highlight=False)


@app.command("list")
@friendly_errors
def list_tokens(
    all_: Annotated[bool, typer.Option("--all", help="include revoked tokens")] = False,
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="table or json")] = OutputFormat.table,
) -> None:
    """Tokens (never the tokens themselves: name, role, project, prefix, dates)."""
    store, tokens = _tokens()
    try:
        rows = tokens.list(include_revoked=all_)
    finally:
        store.dispose()
    if format == OutputFormat.json:
        print_json([t.to_json_dict() for t in rows])
        return
    print_table(
        "API tokens",
        ("id", "name", "role", "project", "prefix", "created", "expires", "revoked"),
        [(t.id, t.name, t.role, t.project_id or "(all)", t.prefix, short_time(t.created_at),
          short_time(t.expires_at), short_time(t.revoked_at)) for t in rows],
    )


@app.command()
@friendly_errors
def revoke(ref: Annotated[str, typer.Argument(help="the token's id, name or prefix")]) -> None:
    """Revoke a token: requests carrying it get 401 from now on."""
    store, tokens = _tokens()
    try:
        count = tokens.revoke(ref)
    finally:
        store.dispose()
    if not count:
        err_console.print(f"[red]error:[/red] no active token with id, name or prefix {ref!r}", highlight=False)
        raise typer.Exit(1)
    typer.echo(f"revoked {count} token(s)")
