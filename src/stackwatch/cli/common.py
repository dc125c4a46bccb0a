"""Shared CLI plumbing: `--config`, settings and store from it, and errors an operator can read.

Imports stay light at module level (typer only): every command module imports this one, and a command must
load only what it uses (`stackwatch --help` does not need pydantic or SQLAlchemy).
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperGroup

from stackwatch.config.env import ENV_CONFIG

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import Settings
    from stackwatch.switchboard.routes import RoutingTable

F = TypeVar("F", bound=Callable[..., Any])
CONFIG_HELP = "YAML configuration (or $STACKWATCH_CONFIG)"


def use_config(ctx: typer.Context, value: Path | None) -> Path | None:
    """Callback of every `--config/-c` option: the file becomes $STACKWATCH_CONFIG while the command runs.

    The environment (rather than a parameter per command) is how every command, and every child process it
    starts, finds the same file; the previous value comes back when the command's context closes, so an
    in-process caller (tests, `typer.testing`) is left as it was.
    """
    if value is None or ctx.resilient_parsing:
        return value
    previous = os.environ.get(ENV_CONFIG)
    os.environ[ENV_CONFIG] = str(value)

    def restore() -> None:
        if previous is None:
            os.environ.pop(ENV_CONFIG, None)
        else:
            os.environ[ENV_CONFIG] = previous

    ctx.call_on_close(restore)
    return value


ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help=CONFIG_HELP, callback=use_config, expose_value=False)
]


@functools.cache
def config_option() -> Any:
    """The one `--config/-c` option (a click parameter built by typer from `ConfigOpt`), copied everywhere."""
    holder = typer.Typer(add_completion=False)

    @holder.command()
    def _holder(config: ConfigOpt = None) -> None:
        """Never run."""

    return typer.main.get_command(holder).params[0]


def add_config_option(command: Any) -> None:
    """Give `command` and every command under it `--config/-c`, unless one already has its own."""
    if not any(p.name == "config" for p in command.params):
        command.params.append(copy.copy(config_option()))
    for sub in getattr(command, "commands", {}).values():
        add_config_option(sub)


class ConfigGroup(TyperGroup):
    """A command group whose commands all accept `--config` (use as `typer.Typer(cls=ConfigGroup)`)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        add_config_option(self)


def settings() -> Settings:
    from stackwatch.config.settings import load_settings

    return load_settings()


def open_store_for(cfg: Settings, long_running: bool = False, writer: str | None = None):  # noqa: ANN201
    """The configured store; `long_running` intake (serve, worker) may write through a store process."""
    from stackwatch.store.db import choose_writer, open_store

    return open_store(cfg.database_url, writer=choose_writer(writer or cfg.store_writer, long_running))


def open_reader_for(cfg: Settings):  # noqa: ANN201
    """Something that reads events (`query`, `get`, `count`): on an embedded database already at the code's
    heads, `sqlite3` alone (store/reads.py: a short command then skips SQLAlchemy's import, half its start-up);
    otherwise the full store, which creates or migrates the database first."""
    from stackwatch.store.reads import open_sqlite_reader

    return open_sqlite_reader(cfg.database_url) or open_store_for(cfg)


def routes_for(cfg: Settings) -> RoutingTable:
    from stackwatch.switchboard.routes import RoutingTable

    return RoutingTable.load(cfg.routes)


def _operator_errors() -> tuple[type[BaseException], ...]:
    """Errors an operator can fix from the message alone (imported only once one was raised)."""
    from stackwatch.config.settings import ConfigError
    from stackwatch.store.errors import StoreError
    from stackwatch.switchboard.routes import RoutingError

    return ConfigError, StoreError, RoutingError, FileNotFoundError, IsADirectoryError


def friendly_errors(func: F) -> F:
    """Turn the errors an operator can fix into one red line and exit 2, not a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if not isinstance(exc, _operator_errors()):
                raise
            from stackwatch.cli.output import err_console

            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]
