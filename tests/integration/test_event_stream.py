"""The stored event stream read in commit order, and handler positions held under leases (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update

from stackwatch.events.model import Event
from stackwatch.store.stream import EventStream, HandlerPositionRow, HandlerPositions, StreamPosition

SAMPLE = Path(__file__).parents[1] / "amqp" / "data" / "nova_versioned_instance-power_off-end.json"


def _events(n: int, provider: str = "p1", prefix: str = "m") -> list[Event]:
    """`n` copies of a real nova notification, each its own message_id."""
    from stackwatch.events.convert import Converter
    from stackwatch.switchboard.routes import RoutingTable

    body = json.loads(SAMPLE.read_text())
    converter = Converter(RoutingTable.load())
    out = []
    for i in range(n):
        body["message_id"] = f"{prefix}-{i}"
        out.append(converter.convert(json.dumps(body).encode(), provider, "test", datetime.now(UTC)))
    return out


def test_reads_each_event_once_in_order_and_resumes(store):
    stream = EventStream(store.engine)
    start = stream.head()
    store.write_batch(_events(30))
    store.write_batch(_events(5, provider="other"))
    first = stream.read("p1", start, 20)
    assert [i.event.message_id for i in first] == [f"m-{i}" for i in range(20)]
    rest = stream.read("p1", first[-1].position, 20)
    assert [i.event.message_id for i in rest] == [f"m-{i}" for i in range(20, 30)]
    assert stream.read("p1", rest[-1].position, 20) == []
    assert stream.backlog("p1", start) == 30 and stream.backlog("p1", first[-1].position) == 10
    assert stream.backlog("p1", start, cap=25) == 25 and stream.backlog("p1", rest[-1].position) == 0
    assert [i.event.message_id for i in stream.read("other", start, 100)] == [f"m-{i}" for i in range(5)]
    # a handler started now begins after everything stored
    assert stream.read("p1", stream.head(), 100) == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgres_never_passes_a_row_whose_transaction_is_still_open(store):
    """Transaction A takes the lower id and commits after B: a reader must not move past A's row unseen."""
    stream = EventStream(store.engine)
    start = stream.head()
    engine = store.engine
    a_inserted, b_committed = threading.Event(), threading.Event()

    ids: dict[str, int] = {}

    def insert(conn, message_id: str) -> None:  # noqa: ANN001
        ids[message_id] = conn.execute(text(
            "INSERT INTO events (provider, message_id, source, event_type, received_at, sort_time, "
            "event_group, level, collapsed_count) VALUES ('p1', :m, 'test', 'compute.instance.update', now(), "
            "now(), 'other', 'detail', 0) RETURNING id"), {"m": message_id}).scalar_one()

    def transaction_a() -> None:
        with engine.begin() as conn:
            insert(conn, "a")
            a_inserted.set()
            b_committed.wait(10)

    thread = threading.Thread(target=transaction_a)
    thread.start()
    assert a_inserted.wait(10)
    with engine.begin() as conn:
        insert(conn, "b")
    assert ids["a"] < ids["b"]  # a took the lower id
    # while A is open, B (committed, higher id) is held back too: it is after the horizon
    assert stream.read("p1", start, 10) == []
    b_committed.set()
    thread.join()
    got = stream.read("p1", start, 10)
    assert sorted(i.event.message_id for i in got) == ["a", "b"]
    assert stream.read("p1", got[-1].position, 10) == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgres_is_not_held_back_by_a_transaction_of_another_database(store):
    """A writing transaction left open in another database of the server cannot add events here."""
    import psycopg

    from tests.conftest import PG_ADMIN_URL

    stream = EventStream(store.engine)
    start = stream.head()
    with psycopg.connect(PG_ADMIN_URL) as elsewhere:
        other_xid = elsewhere.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0]  # holds an xid
        store.write_batch(_events(3))
        got = stream.read("p1", start, 10)
        assert [i.event.message_id for i in got] == ["m-0", "m-1", "m-2"]
        assert all(i.position.txid > other_xid for i in got)  # written after it, read anyway
        elsewhere.rollback()


def test_positions_are_leased_to_one_owner(store):
    engine = store.engine
    one = HandlerPositions(engine, owner="one", lease_seconds=30)
    two = HandlerPositions(engine, owner="two", lease_seconds=30)
    start = StreamPosition(0, 7)
    assert one.claim("refresh", "p1", lambda: start) == start
    assert two.claim("refresh", "p1", StreamPosition) is None  # held
    assert one.advance("refresh", "p1", StreamPosition(0, 12), handled=5)
    assert not two.advance("refresh", "p1", StreamPosition(0, 99), handled=1)  # not the owner: nothing moves
    assert one.claim("refresh", "p1", lambda: start) == StreamPosition(0, 12)  # renewal returns the saved position
    # the owner dies: once its lease runs out another process resumes from the saved position
    with engine.begin() as conn:
        conn.execute(update(HandlerPositionRow).values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
    assert two.claim("refresh", "p1", StreamPosition) == StreamPosition(0, 12)
    assert not one.advance("refresh", "p1", StreamPosition(0, 50), handled=1)
    two.release("refresh", "p1")
    assert one.claim("refresh", "p1", StreamPosition) == StreamPosition(0, 12)
    rows = {(r.handler, r.partition): r for r in one.all()}
    assert rows[("refresh", "p1")].handled == 5 and rows[("refresh", "p1")].owner == "one"
