"""Store errors are sorted by cause (store/errors.is_unavailable), from errors the real drivers raise.

Lock, connection and server-shutdown errors mean "retry, acknowledge nothing"; only what the rows cause is
a refusal. The raw cursors (SQLite executemany, PostgreSQL COPY) raise driver errors that are not
SQLAlchemy's: they must be classified all the same, or a locked database would send good events to the
quarantine.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import create_engine

from stackwatch.events.model import Event
from stackwatch.store.db import normalize_url, open_store
from stackwatch.store.errors import StoreError, StoreUnavailable, as_store_error, is_unavailable
from stackwatch.store.events import EventStore
from tests.conftest import PG_ADMIN_URL


def _event(message_id: str = "m-1") -> Event:
    return Event(message_id=message_id, provider="lab", source="test", event_type="compute.instance.update",
                 timestamp=datetime(2026, 11, 22, tzinfo=UTC), payload={"instance_id": "vm-1"})


def test_sqlite_database_is_locked_is_unavailable(tmp_path):
    url = f"sqlite:///{tmp_path / 'sw.db'}"
    open_store(url).dispose()
    holder = sqlite3.connect(tmp_path / "sw.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        raw = sqlite3.connect(tmp_path / "sw.db", timeout=0.05)
        with pytest.raises(sqlite3.OperationalError, match="locked") as caught:
            raw.execute("INSERT INTO monitor_cursors VALUES ('a', 'b', '1', '2026-01-01')")
        raw.close()
        assert is_unavailable(caught.value)
        # the store's own raw-cursor path (executemany), with a short busy timeout
        store = EventStore(create_engine(url, connect_args={"timeout": 0.05}))
        with pytest.raises(StoreUnavailable, match="locked"):
            store.write_batch([_event()])
        store.dispose()
    finally:
        holder.rollback()
        holder.close()


def test_sqlite_constraint_is_a_refusal(tmp_path):
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x TEXT NOT NULL)")
    with pytest.raises(sqlite3.IntegrityError) as caught:
        conn.execute("INSERT INTO t VALUES (NULL)")
    assert not is_unavailable(caught.value)
    error = as_store_error(caught.value)
    assert type(error) is StoreError and "NOT NULL" in str(error)


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(normalize_url(PG_ADMIN_URL).replace("+psycopg", ""), autocommit=True,
                               connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")


def test_postgresql_admin_shutdown_and_lost_connection_are_unavailable():
    admin = _admin()
    victim = psycopg.connect(normalize_url(PG_ADMIN_URL).replace("+psycopg", ""), connect_timeout=5)
    pid = victim.info.backend_pid
    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(psycopg.OperationalError) as caught:
        victim.execute("SELECT 1")
    assert is_unavailable(caught.value), repr(caught.value)
    with pytest.raises(psycopg.OperationalError) as again:  # the same connection, now closed
        victim.execute("SELECT 1")
    assert is_unavailable(again.value), repr(again.value)
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect("postgresql://postgres@127.0.0.1:1/none", connect_timeout=2)
    assert is_unavailable(refused.value)
    admin.close()


def test_postgresql_value_too_long_is_a_refusal(pg_database):
    store = open_store(pg_database)
    try:
        with pytest.raises(StoreError) as caught:
            store.write_batch([_event("x" * 300)])  # message_id is varchar(255)
        assert not isinstance(caught.value, StoreUnavailable)
        assert "too long" in str(caught.value)
    finally:
        store.dispose()


def test_a_store_error_wrapping_an_unavailable_cause_is_unavailable():
    try:
        try:
            raise sqlite3.OperationalError("database is locked")
        except sqlite3.OperationalError as exc:
            raise StoreError("cannot store batch") from exc
    except StoreError as outer:
        assert is_unavailable(outer)
        assert isinstance(as_store_error(outer), StoreUnavailable)
    assert is_unavailable(BrokenPipeError("store process gone"))
    assert not is_unavailable(ValueError("a converter bug"))
