"""Shared CLI plumbing: settings and store from `--config`, and errors an operator can read."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer

from stackwatch.cli.output import err_console
from stackwatch.config.settings import ConfigError, Settings, load_settings
from stackwatch.store.errors import StoreError
from stackwatch.switchboard.routes import RoutingError, RoutingTable

F = TypeVar("F", bound=Callable[..., Any])


def settings() -> Settings:
    return load_settings()


def open_store_for(cfg: Settings, long_running: bool = False, writer: str | None = None):  # noqa: ANN201
    """The configured store; `long_running` intake (serve, worker) may write through a store process."""
    from stackwatch.store.db import choose_writer, open_store

    return open_store(cfg.database_url, writer=choose_writer(writer or cfg.store_writer, long_running))


def routes_for(cfg: Settings) -> RoutingTable:
    return RoutingTable.load(cfg.routes)


def friendly_errors(func: F) -> F:
    """Turn the errors an operator can fix into one red line and exit 2, not a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ConfigError, StoreError, RoutingError, FileNotFoundError, IsADirectoryError) as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]
