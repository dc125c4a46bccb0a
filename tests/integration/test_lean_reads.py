"""The CLI's lean read path (sqlite3 alone, store/reads.py) answers exactly what the full store answers, and
steps aside for any database it cannot vouch for (missing, older schema, other URL forms)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from stackwatch.config.settings import ProviderConfig
from stackwatch.events.catcher import Catcher
from stackwatch.events.model import RawMessage
from stackwatch.store.db import open_store
from stackwatch.store.reads import EventQuery, open_sqlite_reader, sqlite_path
from tests.conftest import sample_files


@pytest.fixture
def sqlite_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = open_store(url)
    batch = [RawMessage(body=p.read_bytes(), source="ingest") for p in sample_files()]
    Catcher(store, ProviderConfig(name="lab")).catch(batch)
    Catcher(store, ProviderConfig(name="other")).catch(batch[:20])
    yield url
    store.dispose()


def _queries(events) -> list[EventQuery]:
    times = sorted(e.timestamp or e.received_at for e in events)
    middle = times[len(times) // 2]
    return [
        EventQuery(limit=10_000),
        EventQuery(limit=3),
        EventQuery(provider="other", limit=10_000),
        EventQuery(vm="178b0921-8f85-4257-88b6-2e743b5a975c", limit=10_000),
        EventQuery(type_glob="compute.instance.*", limit=10_000),
        EventQuery(type_glob="port.create.end", limit=10_000),
        EventQuery(type_glob="*_*", limit=10_000),  # `_` is a LIKE wildcard: escaped
        EventQuery(group="power", project="7c150a59fe714e6f9263774af9688f0e", limit=10_000),
        EventQuery(since=middle, limit=10_000),
        EventQuery(until=middle, limit=10_000),
        EventQuery(since=middle.astimezone(UTC).replace(tzinfo=None), until=middle + timedelta(days=1), limit=5),
    ]


def test_lean_reader_answers_as_the_store_does(sqlite_url):
    store = open_store(sqlite_url)
    reader = open_sqlite_reader(sqlite_url)
    assert reader is not None
    everything = store.query(EventQuery(limit=10_000))
    assert len(everything) > 50
    for q in _queries(everything):
        assert reader.query(q) == store.query(q), q
    assert reader.count() == store.count() and reader.count("other") == store.count("other") > 0
    some = everything[7]
    assert reader.get(some.message_id) == store.get(some.message_id) == some
    assert reader.get(some.message_id, "nowhere") is None
    assert reader.collapsed_count(some.message_id, some.provider) == store.collapsed_count(some.message_id,
                                                                                           some.provider)
    assert all(e.timestamp is None or e.timestamp.tzinfo is UTC for e in reader.query(EventQuery(limit=10_000)))
    # filters really filter (the equality above must not be two empty lists)
    assert {e.provider for e in reader.query(EventQuery(provider="other", limit=10_000))} == {"other"}
    assert reader.query(EventQuery(type_glob="*_*", limit=10_000))
    store.dispose()


def test_lean_reader_steps_aside_for_databases_it_cannot_vouch_for(tmp_path, sqlite_url):
    assert open_sqlite_reader(f"sqlite:///{tmp_path / 'missing.db'}") is None
    assert not (tmp_path / "missing.db").exists()  # and creates nothing
    assert open_sqlite_reader("postgresql://127.0.0.1/x") is None
    assert open_sqlite_reader(sqlite_url + "?timeout=5") is None
    path = sqlite_path(sqlite_url)
    with sqlite3.connect(path) as conn:  # an older schema: the full store must migrate it first
        conn.execute("UPDATE alembic_version SET version_num = '0001_initial' WHERE rowid = (SELECT min(rowid) FROM "
                     "alembic_version)")  # one head moved back, whichever revisions the heads are
    assert open_sqlite_reader(sqlite_url) is None


def test_store_reads_through_the_same_sql_on_both_databases(store):
    batch = [RawMessage(body=p.read_bytes(), source="ingest") for p in sample_files()]
    Catcher(store, ProviderConfig(name="lab")).catch(batch)
    events = store.query(EventQuery(limit=10_000))
    assert events and all(isinstance(e.payload, dict) for e in events)
    assert all(e.received_at.tzinfo is UTC for e in events)
    since = datetime(2000, 1, 1, tzinfo=UTC)
    assert len(store.query(EventQuery(since=since, type_glob="*_*", limit=10_000))) == len(
        [e for e in events if "_" in e.event_type])
