"""Engines and migrations: SQLite (WAL) by default, PostgreSQL (psycopg 3) by URL.

`open_store` is the one entry point: it builds the engine, runs Alembic to head and returns an EventStore.
Alembic (with Mako and Pygments, ~40 % of a short command's start-up) is imported only when the database
is not already at the code's heads, which `store/heads.py` reads from the version files without it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from stackwatch.store.errors import StoreError, StoreUnavailable
from stackwatch.store.heads import MIGRATIONS_DIR, code_heads

if TYPE_CHECKING:  # pragma: no cover
    from alembic.config import Config


def _json_dumps(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _bind_null(value: None) -> None:
    """sqlite3's adapter for None: the NULL it binds anyway, found at the registry's first lookup.

    Python 3.11's sqlite3 binds str, int, float and bytes directly but sends every other value, None too,
    through its adapter protocol: a registry miss, then `__adapt__` and `__conform__` lookups that each
    build and discard an AttributeError. An event row binds ~12 NULL refs; this saves ~4 us a row
    (bench/RESULTS.md, session 5). Registering for NoneType leaves str/int/float on their direct path."""
    return None


_LZ4_AVAILABLE = "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"


def _prefer_lz4(dbapi_conn, _record) -> None:  # noqa: ANN001
    """Compress large values (event payloads) with lz4 where the server has it, instead of pglz.

    A payload over ~2 KB is compressed when its row is stored; pglz_compress was the PostgreSQL backend's
    largest single cost in an AMQP drain (perf: 14 % of its CPU), lz4 does the same job several times
    faster. Values already stored stay readable whatever they were compressed with; servers built
    without lz4 (PostgreSQL < 14, or --without-lz4) keep pglz."""
    with dbapi_conn.cursor() as cur:
        cur.execute(_LZ4_AVAILABLE)
        row = cur.fetchone()
        if row and row[0]:
            cur.execute("SET default_toast_compression = lz4")
    dbapi_conn.commit()


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 here (psycopg2 is not a dependency). A raw `@` in the
    password (`postgresql://u:p@ss@h/db`) is encoded: the user-info ends at the last `@` before the path, as
    libpq and our masker read it, while SQLAlchemy would split at the first and try to resolve `ss@h`."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
            break
    scheme, sep, rest = url.partition("://")
    authority_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, authority_end)
    if sep and at > 0 and "@" in rest[:at]:
        rest = rest[:at].replace("@", "%40") + rest[at:]
    return f"{scheme}{sep}{rest}"


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"database URL is not valid: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        sqlite3.register_adapter(type(None), _bind_null)
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, json_serializer=_json_dumps, json_deserializer=orjson.loads, connect_args={"timeout": 30}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            cur = dbapi_conn.cursor()
            # before WAL, so a new database gets it: an event row is 1.5-2.5 KB, and 4 KiB pages held one row
            # each; 8 KiB pages take a quarter less space and insert faster (bench/sqlite_schema.py)
            cur.execute("PRAGMA page_size=8192")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA cache_size=-65536")  # 64 MiB: the timeline indexes stay in memory
            cur.execute("PRAGMA wal_autocheckpoint=10000")  # checkpoint every ~40 MB, not every batch
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(
            url,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 10},
        )
        event.listen(engine, "connect", _prefer_lz4)
        return engine
    raise StoreError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql://")


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def at_heads(engine: Engine) -> bool:
    """True when the database's Alembic revisions are exactly the code's heads (nothing to migrate)."""
    heads = code_heads()
    if heads is None:
        return False
    try:
        with engine.connect() as conn:
            current = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except SQLAlchemyError:  # a new database (no table yet) or an unreachable one: Alembic reports it
        return False
    return current == heads


def upgrade(engine: Engine, revision: str = "heads") -> None:
    if revision == "heads" and at_heads(engine):
        return
    from alembic import command

    cfg = _alembic_config()
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot migrate database: {exc.__class__.__name__}: {exc.orig or exc}") from exc


def current_revision(engine: Engine) -> tuple[str | None, str]:
    """(revisions of the database, head revisions of this code), comma-separated: parts migrate on branches."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = ",".join(sorted(ScriptDirectory.from_config(_alembic_config()).get_heads()))
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_heads()
    return (",".join(sorted(current)) or None), heads


def open_store(url: str, migrate: bool = True, writer: str = "thread"):  # noqa: ANN201 - avoids an import cycle
    """The event store on `url`. writer="process" runs its writes in a child process (store/process.py)."""
    from stackwatch.store.events import EventStore

    engine = make_engine(url)
    if migrate:
        upgrade(engine)
    if writer == "process":
        from stackwatch.store.process import ProcessEventStore

        return ProcessEventStore(engine, url)
    if writer != "thread":
        raise StoreError(f"store writer must be thread or process, not {writer!r}")
    return EventStore(engine)


def choose_writer(setting: str, long_running: bool) -> str:
    """`auto`: a store process where it pays (a second core, a process that lives long enough), else in-process."""
    if setting != "auto":
        return setting
    return "process" if long_running and (os.cpu_count() or 1) > 1 else "thread"
