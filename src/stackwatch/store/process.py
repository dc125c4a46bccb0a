"""A store whose writes run in child processes, so converting and writing use two cores.

The catcher's conversion is Python that holds the GIL; SQLite's inserts and psycopg's COPY formatting are C
that could run beside it, but in one process the two still trade the GIL at every driver call. Here the
parent converts and builds records (`EventStore.write_records` up to `write_rows`), and child processes run
`write_rows`: the same transaction, the same errors. One child for SQLite (one writer at a time), two for
PostgreSQL, whose transactions run side by side (`StoreProcessPool`). `bench/ingest.py`: SQLite 10.3k -> 17.3k
ev/s over threads; PostgreSQL 14.3-18.2k with one child, ~28k with two (bench/RESULTS.md, session 6).

Failure rules are the store's: `StoreUnavailable` when the database cannot be written *or the child died*
(nothing of the batch is acknowledged; the next call starts a new child), `StoreError` for the rest.
Reads stay in the parent, on its own engine.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import multiprocessing
import pickle
import threading
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy import Engine

from stackwatch.events.model import R_MESSAGE_ID, Record
from stackwatch.store.errors import StoreError, StoreUnavailable, as_store_error
from stackwatch.store.events import EventStore, QuarantineItem
from stackwatch.store.inserts import times_as_text

log = logging.getLogger(__name__)

#: a fresh interpreter, never a fork: the parent runs threads (monitors, the API) that a fork would copy mid-step
_CONTEXT = multiprocessing.get_context("spawn")


def _dumps(request: object) -> bytes:
    """Pickle without the memo: a batch is a tree of records and strings, nothing shared or cyclic, and
    memoizing its ~30,000 objects was a third of the pickling (4.7 -> 3.2 us per event)."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    pickler.dump(request)
    return buffer.getvalue()


#: write requests one transaction may take: the parent has at most `concurrent_writers` in flight anyway
_MAX_GROUP = 4
_WriteRequest = tuple[list[Record], dict[tuple[str, str], int], list[QuarantineItem]]


def _child_main(conn: Connection, database_url: str) -> None:
    """Serve `write_rows` requests until the parent closes the pipe; one reply per request, in order."""
    from stackwatch.gctune import tune_for_intake
    from stackwatch.store.db import open_store

    store = open_store(database_url, migrate=False)  # the parent migrated before starting us
    tune_for_intake()
    try:
        while True:
            try:
                writes, control = _next_requests(conn)
            except EOFError:
                return
            for reply in _write_group(store, writes):
                conn.send(reply)
            if control == "ping":
                conn.send(("ok", set()))
            elif control == "stop":
                return
    finally:
        store.dispose()


def _next_requests(conn: Connection) -> tuple[list[_WriteRequest], str | None]:
    """The next request, and the write requests already waiting behind it (up to a control message).

    Group commit: when the parent sends faster than one transaction a batch, the batches that queued up
    meanwhile share the next transaction. A random-key index (message_id, vm_ref) rewrites about one page
    per row in every commit, so two batches in one commit write fewer pages per row (bench/RESULTS.md).
    """
    writes: list[_WriteRequest] = []
    while True:
        request = pickle.loads(conn.recv_bytes())
        if isinstance(request, str):
            return writes, request
        writes.append(request)
        if len(writes) >= _MAX_GROUP or not conn.poll():
            return writes, None


def _write_group(store: EventStore, writes: list[_WriteRequest]) -> list[tuple[str, Any]]:
    """Replies for `writes`, written in one transaction where they can share one exactly.

    They share one only when no message_id is in two of them: the stored ids are then divided among the
    requests without doubt (a redelivery in the next batch must still count as a duplicate there). A
    database error of the group is retried request by request, so one bad batch fails alone.
    """
    if len(writes) > 1:
        ids = [{row[R_MESSAGE_ID] for row in rows} for rows, _, _ in writes]
        if sum(map(len, ids)) == len(set().union(*ids)):
            rows = [row for request in writes for row in request[0]]
            collapsed: dict[tuple[str, str], int] = {}
            for _, counts, _ in writes:
                for key, count in counts.items():
                    collapsed[key] = collapsed.get(key, 0) + count
            quarantine = [item for request in writes for item in request[2]]
            status, value = _write(store, rows, collapsed, quarantine)
            if status == "ok":
                return [("ok", value & request_ids) for request_ids in ids]
            if status == "unavailable":
                return [(status, value)] * len(writes)
    return [_write(store, *request) for request in writes]


def _write(
    store: EventStore, rows: list[Record], collapsed: dict[tuple[str, str], int], quarantine: list[QuarantineItem]
) -> tuple[str, Any]:
    try:
        return "ok", store.write_rows(rows, collapsed, quarantine)
    except Exception as exc:  # noqa: BLE001 - whatever it is must reach the parent, classified, not kill this loop
        error = as_store_error(exc)
        return ("unavailable" if isinstance(error, StoreUnavailable) else "error"), str(error)


class StoreProcess:
    """One child that runs `EventStore.write_rows` for this process; started on first use, restarted after death.

    Two writers may each have a request in flight: the child reads the next one as soon as it has answered
    the last, instead of idling while the parent builds rows, and writes requests that queued up meanwhile
    in one transaction (`_next_requests`). Replies come back in request order; a reader
    thread per child hands each to its caller. Only that reader closes the parent's end of the pipe, after
    the child's end closed: a descriptor is never closed under a read.
    """

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._lock = threading.Lock()  # start, stop and send: requests reach the pipe whole and in order
        self._proc: Any = None
        self._conn: Connection | None = None
        self._waiting: collections.deque[Future[tuple[str, Any]]] = collections.deque()
        self._reader: threading.Thread | None = None

    def write_rows(
        self, rows: list[Record], collapsed: dict[tuple[str, str], int], quarantine: list[QuarantineItem]
    ) -> set[str]:
        return self._call((rows, collapsed, quarantine))

    def start(self) -> None:
        """Start the child now and wait until it is ready, instead of on the first write."""
        self._call("ping")

    def _call(self, request: object) -> set[str]:
        reply: Future[tuple[str, Any]] = Future()
        with self._lock:
            conn = self._ensure_started()
            self._waiting.append(reply)
            try:
                conn.send_bytes(_dumps(request))
            except (OSError, ValueError):
                self._proc.kill()  # its reader sees the pipe close and fails every waiting call, this one too
        status, value = reply.result()
        if status == "ok":
            return value
        if status == "unavailable":
            raise StoreUnavailable(value)
        raise StoreError(value)

    def _read_replies(
        self, proc: Any, conn: Connection, waiting: collections.deque[Future[tuple[str, Any]]]
    ) -> None:
        try:
            while True:
                reply = conn.recv()
                waiting.popleft().set_result(reply)
        except (EOFError, OSError) as exc:
            reason = f"store process died ({exc.__class__.__name__}); the batch was not stored"
        except Exception as exc:  # an unreadable reply: the child's state is unknown, start over
            reason = f"store process reply unreadable ({exc.__class__.__name__}: {exc}); the batch was not stored"
            proc.kill()
        with self._lock:
            while waiting:
                waiting.popleft().set_result(("unavailable", reason))
            if self._conn is conn:
                self._conn = None  # the next call starts a new child
        conn.close()

    def _ensure_started(self) -> Connection:
        """With the lock held: the live child's pipe, starting a child first when there is none."""
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            return self._conn
        self._stop_child()
        parent, child = _CONTEXT.Pipe()
        proc = _CONTEXT.Process(
            target=_child_main, args=(child, self.database_url), name="stackwatch-store", daemon=True
        )
        proc.start()
        child.close()
        self._proc, self._conn, self._waiting = proc, parent, collections.deque()
        self._reader = threading.Thread(
            target=self._read_replies, args=(proc, parent, self._waiting), name="store-replies", daemon=True
        )
        self._reader.start()
        log.info("store process started", extra={"pid": proc.pid})
        return parent

    def _stop_child(self) -> None:
        """With the lock held: ask the child to finish and exit (kill it after 5 s); its reader ends on EOF."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is None:
            return
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):
                conn.send_bytes(_dumps("stop"))
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)
        if proc.exitcode not in (0, None):
            log.warning("store process exited", extra={"exitcode": proc.exitcode})

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    def close(self) -> None:
        with self._lock:
            reader = self._reader
            self._stop_child()
        if reader is not None:
            reader.join(timeout=5)


class StoreProcessPool:
    """Several `StoreProcess`es on one database, each with its own connection: PostgreSQL runs their
    transactions side by side (one child is one backend, and a drain waited on it: the CPU was a third idle).

    A write goes to the child with the fewest requests in flight, so each child has one transaction running
    and at most one request waiting behind it. Concurrent transactions stay correct: the unique index makes
    a second insert of a message_id wait for the first transaction and then count as a duplicate.
    """

    def __init__(self, database_url: str, processes: int) -> None:
        self.processes = [StoreProcess(database_url) for _ in range(max(1, processes))]
        self._lock = threading.Lock()
        self._in_flight = [0] * len(self.processes)

    @property
    def database_url(self) -> str:
        return self.processes[0].database_url

    @database_url.setter
    def database_url(self, url: str) -> None:
        for proc in self.processes:
            proc.database_url = url

    @property
    def pid(self) -> int | None:
        """The first child's pid (None when it is not running)."""
        return self.processes[0].pid

    @property
    def pids(self) -> list[int | None]:
        return [proc.pid for proc in self.processes]

    def start(self) -> None:
        for proc in self.processes:
            proc.start()

    def write_rows(
        self, rows: list[Record], collapsed: dict[tuple[str, str], int], quarantine: list[QuarantineItem]
    ) -> set[str]:
        with self._lock:
            index = min(range(len(self.processes)), key=self._in_flight.__getitem__)
            self._in_flight[index] += 1
        try:
            return self.processes[index].write_rows(rows, collapsed, quarantine)
        finally:
            with self._lock:
                self._in_flight[index] -= 1

    def close(self) -> None:
        for proc in self.processes:
            proc.close()


class ProcessEventStore(EventStore):
    """An EventStore that writes through store processes; everything else runs here as usual.

    SQLite takes one writer at a time: one child, with the next request waiting in its pipe. PostgreSQL
    gets `PG_PROCESSES` children, each with a transaction running and one request waiting.
    """

    PG_PROCESSES = 2

    def __init__(self, engine: Engine, database_url: str) -> None:
        super().__init__(engine)
        self.writer = StoreProcessPool(database_url, self.PG_PROCESSES if self.dialect == "postgresql" else 1)

    def write_rows(
        self, rows: list[Record], collapsed: dict[tuple[str, str], int], quarantine: list[QuarantineItem]
    ) -> set[str]:
        rows = times_as_text(rows, self.dialect)  # formatted here, where pickling copies them anyway
        return self.writer.write_rows(rows, collapsed, quarantine)

    @property
    def concurrent_writers(self) -> int:
        return 2 * len(self.writer.processes)  # per child: one transaction running, the next request waiting

    def dispose(self) -> None:
        self.writer.close()
        super().dispose()
