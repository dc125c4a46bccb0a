"""Reading events: the SQL of an `EventQuery`, a count, one event by id, run on a plain DB-API connection.

Written as SQL text rather than SQLAlchemy expressions on purpose: importing SQLAlchemy (and our ORM models) is
about half of what a short command such as `stackwatch events list` costs (bench/cli.py), and these reads
need none of it. So there is one implementation of the event reads, used two ways:
- `EventStore` runs it on a connection from its engine's pool (the API, `serve`, every command that writes);
- `open_sqlite_reader` runs it on `sqlite3` alone, for the CLI's read-only commands on an embedded database
  that is already at the code's migration heads (otherwise the caller opens the full store, which migrates).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from stackwatch.events.model import REF_FIELDS, Event
from stackwatch.store.errors import as_store_error
from stackwatch.store.heads import code_heads


@dataclass(frozen=True, slots=True)
class EventQuery:
    provider: str | None = None
    vm: str | None = None
    host: str | None = None
    project: str | None = None
    type_glob: str | None = None
    group: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    projects: tuple[str, ...] | None = None  # the caller's visible projects (api/identity.py); None: all


def glob_to_like(pattern: str) -> str:
    """`compute.instance.*` -> `compute.instance.%` with LIKE's own wildcards escaped."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def sqlite_time(value: datetime) -> str:
    """A time as SQLite holds it: naive UTC text with microseconds, the form SQLAlchemy's DATETIME writes and
    reads, so comparisons on the text order correctly."""
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    return utc.isoformat(" ", "microseconds")[:26]


_SIMPLE = ("message_id", "provider", "source", "event_type", "publisher_id", "priority", "project_id", "user_id",
           "request_id", "level", *REF_FIELDS)
#: the columns an Event is read from, in the order `event_from_row` takes them
EVENT_COLUMNS = (*_SIMPLE, "event_group", "timestamp", "received_at", "payload", "collapsed_count")
_SELECT = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
_TIMESTAMP, _RECEIVED, _PAYLOAD = len(_SIMPLE) + 1, len(_SIMPLE) + 2, len(_SIMPLE) + 3
_FILTERS = (("provider", "provider"), ("vm", "vm_ref"), ("host", "host_ref"), ("project", "project_id"),
            ("group", "event_group"))

Connect = Callable[[], AbstractContextManager[Any]]


class EventReader:
    """Event reads on connections from `connect` (a context manager yielding a DB-API connection) for
    `dialect` ("sqlite" or "postgresql": the placeholder and how times and JSON come back differ)."""

    def __init__(self, connect: Connect, dialect: str) -> None:
        self._connect = connect
        self._pg = dialect == "postgresql"
        self._mark = "%s" if self._pg else "?"

    def query(self, q: EventQuery) -> list[Event]:
        """Events matching `q`: the latest `limit` of them, in chronological order."""
        where, params = self._where(q)
        sql = f"{_SELECT}{where} ORDER BY sort_time DESC, id DESC LIMIT {max(1, int(q.limit))}"
        rows = self._fetch(sql, params)
        return [event_from_row(row) for row in reversed(rows)]

    def get(
        self, message_id: str, provider: str | None = None, projects: tuple[str, ...] | None = None
    ) -> Event | None:
        """One event by message id; `projects` restricts it as EventQuery.projects does (None: any)."""
        sql, params = f"{_SELECT} WHERE message_id = {self._mark}", [message_id]
        if provider:
            sql += f" AND provider = {self._mark}"
            params.append(provider)
        if projects is not None:
            sql += f" AND {self._projects_clause(projects, params)}"
        rows = self._fetch(sql + " ORDER BY id LIMIT 1", params)
        return event_from_row(rows[0]) if rows else None

    def count(self, provider: str | None = None) -> int:
        sql, params = "SELECT count(*) FROM events", []
        if provider:
            sql += f" WHERE provider = {self._mark}"
            params.append(provider)
        return int(self._fetch(sql, params)[0][0])

    def collapsed_count(self, message_id: str, provider: str) -> int:
        rows = self._fetch(
            f"SELECT collapsed_count FROM events WHERE provider = {self._mark} AND message_id = {self._mark}",
            [provider, message_id],
        )
        return int(rows[0][0] or 0) if rows else 0

    # -- internals -------------------------------------------------------------------------------------
    def _where(self, q: EventQuery) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        mark = self._mark
        for attr, column in _FILTERS:
            value = getattr(q, attr)
            if value:
                clauses.append(f"{column} = {mark}")
                params.append(value)
        if q.type_glob:
            if any(ch in q.type_glob for ch in "*?"):
                clauses.append(f"event_type LIKE {mark} ESCAPE '\\'")
                params.append(glob_to_like(q.type_glob))
            else:
                clauses.append(f"event_type = {mark}")
                params.append(q.type_glob)
        for value, op in ((q.since, ">="), (q.until, "<")):
            if value is not None:
                clauses.append(f"sort_time {op} {mark}")
                params.append(self._time_param(value))
        if q.projects is not None:
            clauses.append(self._projects_clause(q.projects, params))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def _projects_clause(self, projects: Sequence[str], params: list[Any]) -> str:
        """Project scoping in the WHERE clause itself (the rule of store/scope.py for SQLAlchemy reads), so
        limits, sort and counts only ever see a scoped caller's rows; no project at all: no row."""
        if not projects:
            return "1 = 0"
        params.extend(projects)
        return f"project_id IN ({', '.join([self._mark] * len(projects))})"

    def _time_param(self, value: datetime) -> datetime | str:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if self._pg else sqlite_time(value)

    def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with self._connect() as conn, closing(conn.cursor()) as cursor:
                cursor.execute(sql, tuple(params))
                return cursor.fetchall()
        except Exception as exc:
            raise as_store_error(exc, "cannot read events") from exc

def event_from_row(row: Sequence[Any]) -> Event:
    """An Event from the `EVENT_COLUMNS` of a row, as a driver returns them (SQLite: times and JSON as text)
    or as SQLAlchemy decodes them (the event stream's reads)."""
    payload = row[_PAYLOAD]
    if isinstance(payload, str | bytes):
        payload = orjson.loads(payload)
    return Event(
        **dict(zip(_SIMPLE, row, strict=False)),
        group=row[len(_SIMPLE)],
        timestamp=_utc(row[_TIMESTAMP]),
        received_at=_utc(row[_RECEIVED]),
        payload=payload,
        collapsed_count=row[_PAYLOAD + 1] or 0,
    )


def _utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sqlite_path(url: str) -> Path | None:
    """The file of a plain `sqlite:///PATH` URL (no query options), else None."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url:
        return None
    path = url[len(prefix):]
    return Path(path).expanduser() if path and path != ":memory:" else None


def open_sqlite_reader(url: str) -> EventReader | None:
    """A reader on `sqlite3` alone when `url` names an existing SQLite file at the code's migration heads;
    None otherwise (a new or older database, PostgreSQL, URL options): the caller opens the full store then."""
    path = sqlite_path(url)
    heads = code_heads()
    if path is None or heads is None or not path.is_file():
        return None
    try:
        conn = sqlite3.connect(path, timeout=30)
        current = {row[0] for row in conn.execute("SELECT version_num FROM alembic_version")}
    except sqlite3.Error:
        return None
    if current != heads:
        conn.close()
        return None
    return EventReader(lambda: nullcontext(conn), "sqlite")
