"""The store process (store/process.py) on SQLite and on the real PostgreSQL: same results, clear failures."""

from __future__ import annotations

import os
import signal

import orjson
import pytest

from stackwatch.config.settings import ProviderConfig
from stackwatch.events.catcher import Catcher
from stackwatch.events.model import RawMessage
from stackwatch.store.db import choose_writer, open_store
from stackwatch.store.errors import StoreError, StoreUnavailable
from stackwatch.store.events import QuarantineItem
from stackwatch.store.process import ProcessEventStore
from tests.conftest import sample_files


@pytest.fixture
def pstore(db_url):
    store = open_store(db_url, writer="process")
    yield store
    store.dispose()


def _samples() -> list[RawMessage]:
    return [RawMessage(body=p.read_bytes()) for p in sample_files()]


def test_writes_through_the_child_exactly_like_in_process(pstore, tmp_path):
    assert isinstance(pstore, ProcessEventStore)
    first = Catcher(pstore, ProviderConfig(name="lab")).catch(_samples() + [RawMessage(body=b"{not json")])
    assert pstore.writer.pid not in (None, os.getpid())  # a child did the writing
    assert first.quarantined == 1 and pstore.quarantine_count("lab") == 1
    again = Catcher(pstore, ProviderConfig(name="lab")).catch(_samples())
    assert again.stored == 0 and again.duplicates == len(_samples())

    reference = open_store(f"sqlite:///{tmp_path / 'ref.db'}")  # the in-process store on the same input
    ref = Catcher(reference, ProviderConfig(name="lab")).catch(_samples())
    assert first.stored == ref.stored == pstore.count("lab")
    assert {e.message_id for e in first.stored_events} == {e.message_id for e in ref.stored_events}
    for event in ref.stored_events[:20]:
        assert pstore.get(event.message_id, "lab").to_json_dict() | {"received_at": None} == (
            reference.get(event.message_id, "lab").to_json_dict() | {"received_at": None}
        )
    reference.dispose()


def test_a_killed_child_means_unavailable_then_a_new_child(pstore):
    catcher = Catcher(pstore, ProviderConfig(name="lab"))
    body = {"event_type": "compute.instance.update", "message_id": "m-1", "payload": {"instance_id": "vm-1"}}
    assert catcher.catch([RawMessage(body=orjson.dumps(body))]).stored == 1
    first_pid = pstore.writer.pid
    os.kill(first_pid, signal.SIGKILL)
    body["message_id"] = "m-2"
    with pytest.raises(StoreUnavailable, match="store process died"):
        catcher.catch([RawMessage(body=orjson.dumps(body))])
    report = catcher.catch([RawMessage(body=orjson.dumps(body))])  # the caller's retry: a new child stores it
    assert report.stored == 1 and pstore.writer.pid not in (None, first_pid)
    assert pstore.count("lab") == 2


def test_database_errors_cross_the_process_boundary(pstore):
    bad = QuarantineItem("lab", "ingest", "reason", b"raw", received_at=None)  # type: ignore[arg-type]
    with pytest.raises(StoreError) as info:  # received_at is NOT NULL: the child's transaction fails
        pstore.write_batch([], quarantine=[bad])
    assert not isinstance(info.value, StoreUnavailable)
    assert pstore.quarantine_count() == 0


def test_unreachable_database_is_unavailable(tmp_path):
    store = open_store("postgresql://postgres@127.0.0.1:5432/postgres", migrate=False, writer="process")
    store.writer.database_url = "postgresql://nobody@127.0.0.1:1/none"  # the child connects here
    try:
        with pytest.raises(StoreUnavailable):
            store.write_batch([], quarantine=[QuarantineItem("lab", "ingest", "r", b"x", received_at=None)])  # type: ignore[arg-type]
    finally:
        store.dispose()


def test_auto_writer_uses_a_process_only_where_it_pays(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert choose_writer("auto", long_running=True) == "process"
    assert choose_writer("auto", long_running=False) == "thread"
    assert choose_writer("thread", long_running=True) == "thread"
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert choose_writer("auto", long_running=True) == "thread"
    with pytest.raises(StoreError, match="thread or process"):
        open_store("sqlite://", writer="fork")


def _event_body(i: int) -> bytes:
    return orjson.dumps({"event_type": "compute.instance.update", "message_id": f"m-{i}",
                         "payload": {"instance_id": f"vm-{i}"}})


def test_two_writers_each_get_their_own_answers(pstore):
    """Two requests in flight: replies come back in order and each caller gets the answer to its own batch."""
    from concurrent.futures import ThreadPoolExecutor

    assert pstore.concurrent_writers == 2 * len(pstore.writer.processes)
    catcher = Catcher(pstore, ProviderConfig(name="lab"))

    def write(first: int) -> tuple[int, set[str]]:
        batch = [RawMessage(body=_event_body(i)) for i in range(first, first + 25)]
        return first, {e.message_id for e in catcher.commit(catcher.prepare(batch)).stored_events}

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(write, range(0, 2000, 25)))
    for first, stored in results:
        assert stored == {f"m-{i}" for i in range(first, first + 25)}
    assert pstore.count("lab") == 2000


def test_a_child_killed_with_two_requests_in_flight_fails_both_then_recovers(pstore):
    import threading

    catcher = Catcher(pstore, ProviderConfig(name="lab"))
    pstore.writer.start()
    big = [[RawMessage(body=_event_body(i)) for i in range(k * 3000, (k + 1) * 3000)] for k in range(2)]
    outcomes: list[object] = []

    def write(batch: list[RawMessage]) -> None:
        try:
            outcomes.append(catcher.catch(batch).stored)
        except StoreUnavailable as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=write, args=(b,)) for b in big]
    for t in threads:
        t.start()
    os.kill(pstore.writer.pid, signal.SIGKILL)
    for t in threads:
        t.join(30)
    assert len(outcomes) == 2 and not any(t.is_alive() for t in threads)
    assert all(o == 3000 or isinstance(o, StoreUnavailable) for o in outcomes)
    stored_before = pstore.count("lab")
    again = sum(catcher.catch(b).stored for b in big)  # the retries a monitor would make
    assert pstore.count("lab") == 6000 == stored_before + again


# -- group commit: requests that queued up share one transaction (process._write_group) ------------------
def _rows(catcher: Catcher, ids: list[int]) -> list[list[object]]:
    return catcher.prepare([RawMessage(body=_event_body(i)) for i in ids]).records


def _count_commits(store) -> list[int]:  # noqa: ANN001
    from sqlalchemy import event

    commits = [0]
    event.listen(store.engine, "commit", lambda _conn: commits.__setitem__(0, commits[0] + 1))
    return commits


def test_queued_requests_share_one_transaction_and_each_gets_its_own_ids(store):
    from stackwatch.store.process import _write_group

    catcher = Catcher(store, ProviderConfig(name="lab"))
    commits = _count_commits(store)
    replies = _write_group(store, [(_rows(catcher, [1, 2]), {}, []), (_rows(catcher, [3, 4, 5]), {}, [])])
    assert replies == [("ok", {"m-1", "m-2"}), ("ok", {"m-3", "m-4", "m-5"})]
    assert commits[0] == 1 and store.count("lab") == 5


def test_a_redelivery_in_the_next_request_is_still_its_duplicate(store):
    """m-2 in both requests: stored once, new for the first request only (the switchboard handles it once)."""
    from stackwatch.store.process import _write_group

    catcher = Catcher(store, ProviderConfig(name="lab"))
    replies = _write_group(store, [(_rows(catcher, [1, 2]), {}, []), (_rows(catcher, [2, 3]), {}, [])])
    assert replies == [("ok", {"m-1", "m-2"}), ("ok", {"m-3"})]
    assert store.count("lab") == 3


def test_a_bad_request_fails_alone_and_the_others_are_stored(store):
    from stackwatch.store.process import _write_group

    catcher = Catcher(store, ProviderConfig(name="lab"))
    bad = QuarantineItem("lab", "ingest", "reason", b"raw", received_at=None)  # type: ignore[arg-type]
    replies = _write_group(store, [
        (_rows(catcher, [1]), {}, []), (_rows(catcher, [2]), {}, [bad]), (_rows(catcher, [3]), {}, []),
    ])
    assert [status for status, _ in replies] == ["ok", "error", "ok"]
    assert replies[0][1] == {"m-1"} and replies[2][1] == {"m-3"}
    assert store.count("lab") == 2 and store.quarantine_count() == 0  # the bad request stored nothing


def test_an_unreachable_database_fails_every_request_of_the_group():
    from stackwatch.store.process import _write_group

    store = open_store("postgresql://nobody@127.0.0.1:1/none", migrate=False)
    try:
        catcher = Catcher(store, ProviderConfig(name="lab"))
        replies = _write_group(store, [(_rows(catcher, [1]), {}, []), (_rows(catcher, [2]), {}, [])])
        assert [status for status, _ in replies] == ["unavailable", "unavailable"]
    finally:
        store.dispose()


def test_collapsed_counts_of_a_group_are_added_together(store):
    from stackwatch.store.process import _write_group

    catcher = Catcher(store, ProviderConfig(name="lab"))
    assert _write_group(store, [(_rows(catcher, [1]), {}, [])]) == [("ok", {"m-1"})]
    replies = _write_group(store, [
        (_rows(catcher, [2]), {("lab", "m-1"): 3}, []), (_rows(catcher, [3]), {("lab", "m-1"): 4}, []),
    ])
    assert replies == [("ok", {"m-2"}), ("ok", {"m-3"})]
    assert store.collapsed_count("m-1", "lab") == 7


def test_the_child_takes_what_queued_up_as_one_group_and_stops_at_a_control_message():
    import multiprocessing

    from stackwatch.store.process import _MAX_GROUP, _dumps, _next_requests

    parent, child = multiprocessing.Pipe()
    requests = [([[f"row-{i}"]], {}, []) for i in range(_MAX_GROUP + 3)]
    for request in requests[:2]:
        parent.send_bytes(_dumps(request))
    parent.send_bytes(_dumps("ping"))
    for request in requests[2:]:
        parent.send_bytes(_dumps(request))
    assert _next_requests(child) == (requests[:2], "ping")  # the writes, then the ping answered after them
    assert _next_requests(child) == (requests[2 : 2 + _MAX_GROUP], None)  # bounded
    assert _next_requests(child) == (requests[-1:], None)


# -- PostgreSQL: several store processes, one transaction each --------------------------------------------
@pytest.fixture
def pg_pstore(pg_database):
    import psycopg

    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    store = open_store(pg_database, writer="process")
    yield store
    store.dispose()


def test_postgresql_writes_run_in_two_children_side_by_side(pg_pstore):
    from concurrent.futures import ThreadPoolExecutor

    assert len(pg_pstore.writer.processes) == 2 and pg_pstore.concurrent_writers == 4
    pg_pstore.writer.start()
    pids = pg_pstore.writer.pids
    assert None not in pids and len(set(pids)) == 2 and os.getpid() not in pids
    catcher = Catcher(pg_pstore, ProviderConfig(name="lab"))
    # overlapping batches (each shares half its ids with the next), four in flight: every id is new once
    batches = [list(range(first, first + 200)) for first in range(0, 4000, 100)]

    def write(ids: list[int]) -> set[str]:
        prepared = catcher.prepare([RawMessage(body=_event_body(i)) for i in ids])
        return {e.message_id for e in catcher.commit(prepared).stored_events}

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(write, batches))
    new_ids = [mid for stored in results for mid in stored]
    assert len(new_ids) == len(set(new_ids)) == 4100  # each stored once, reported new by one batch only
    assert pg_pstore.count("lab") == 4100
    assert pg_pstore.writer.pids == pids  # nobody died on the way


def test_postgresql_payloads_are_compressed_with_lz4_where_the_server_has_it(pg_pstore):
    from sqlalchemy import text

    from stackwatch.store.db import _LZ4_AVAILABLE

    with pg_pstore.engine.connect() as conn:
        has_lz4 = conn.execute(text(_LZ4_AVAILABLE)).scalar()
        if not has_lz4:
            pytest.skip("this PostgreSQL was built without lz4")
        assert conn.execute(text("SHOW default_toast_compression")).scalar() == "lz4"
    big = {"event_type": "compute.instance.update", "message_id": "big",
           "payload": {"instance_id": "vm-1", "metadata": {f"key{i}": "value " * 8 for i in range(60)}}}
    small = [RawMessage(body=orjson.dumps(big))]
    bulk = [RawMessage(body=orjson.dumps({**big, "message_id": f"big-{i}",  # over 100 rows: the COPY path
                                          "payload": {**big["payload"], "instance_id": f"vm-{i}"}}))
            for i in range(150)]
    catcher = Catcher(pg_pstore, ProviderConfig(name="lab"))
    assert catcher.catch(small).stored == 1 and catcher.catch(bulk).stored == 150
    with pg_pstore.engine.connect() as conn:
        methods = conn.execute(text("SELECT DISTINCT pg_column_compression(payload) FROM events")).scalars().all()
    assert methods == ["lz4"]
    assert pg_pstore.get("big", "lab").payload["metadata"]["key59"] == "value " * 8


class _ServerWithoutLz4:
    """A DB-API connection to a server built without lz4 (this machine's PostgreSQL has it, so the real
    server covers the other case above): it answers the availability query with false."""

    def __init__(self) -> None:
        self.executed: list[str] = []
        self.committed = False

    def cursor(self) -> _ServerWithoutLz4:
        return self

    def __enter__(self) -> _ServerWithoutLz4:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, sql: str) -> None:
        self.executed.append(sql)

    def fetchone(self) -> tuple[bool]:
        return (False,)

    def commit(self) -> None:
        self.committed = True


def test_lz4_is_not_asked_for_where_the_server_lacks_it():
    """Such a server refuses `SET default_toast_compression = lz4`: asking would fail every connection."""
    from stackwatch.store.db import _LZ4_AVAILABLE, _prefer_lz4

    conn = _ServerWithoutLz4()
    _prefer_lz4(conn, None)
    assert conn.executed == [_LZ4_AVAILABLE]  # asked, and set nothing
    assert conn.committed  # the connection goes back to the pool outside a transaction
