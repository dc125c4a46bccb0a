"""Rendering of listings: `--format table` (rich) or `--format json` (exact contract field names).

rich and orjson are imported on first use, not with this module: every command module imports the
`OutputFormat` enum for its options, and `stackwatch --help` should not pay for a table renderer.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"


class LazyConsole:
    """A rich Console made on first use (rich costs ~60 ms to import); attributes pass through to it."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


console = LazyConsole()
err_console = LazyConsole(stderr=True)


def print_json(document: Any) -> None:
    import orjson

    sys.stdout.write(orjson.dumps(document, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")
    sys.stdout.flush()


def short_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("-" if v is None else str(v) for v in row))
    console.print(table)
