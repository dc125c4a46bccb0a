"""A store whose writes run in a child process, so converting and writing use two cores.

The catcher's conversion is Python that holds the GIL; SQLite's inserts and psycopg's COPY formatting are C
that could run beside it, but in one process the two still trade the GIL at every driver call. Here the
parent converts and builds rows (`EventStore.write_batch` up to `write_rows`), and one child process per store
runs `write_rows`: the same transaction, the same errors. `bench/ingest.py`: +9 % on SQLite over threads;
PostgreSQL bulk loads do better in-process with two transactions (`EventStore.concurrent_writers`).

Failure rules are the store's: `StoreUnavailable` when the database cannot be written *or the child died*
(nothing of the batch is acknowledged; the next call starts a new child), `StoreError` for the rest.
Reads stay in the parent, on its own engine.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from multiprocessing.connection import Connection
from typing import Any

from sqlalchemy import Engine

from stackwatch.store.errors import StoreError, StoreUnavailable
from stackwatch.store.events import EventStore, QuarantineItem, sqlite_ready

log = logging.getLogger(__name__)

#: a fresh interpreter, never a fork: the parent runs threads (monitors, the API) that a fork would copy mid-step
_CONTEXT = multiprocessing.get_context("spawn")


def _child_main(conn: Connection, database_url: str) -> None:
    """Serve `write_rows` requests until the parent closes the pipe."""
    from stackwatch.gctune import tune_for_intake
    from stackwatch.store.db import open_store

    store = open_store(database_url, migrate=False)  # the parent migrated before starting us
    tune_for_intake()
    try:
        while True:
            try:
                request = conn.recv()
            except EOFError:
                return
            if request == "ping":
                conn.send(("ok", set()))
                continue
            rows, collapsed, quarantine = request
            try:
                reply: tuple[str, Any] = ("ok", store.write_rows(rows, collapsed, quarantine))
            except StoreUnavailable as exc:
                reply = ("unavailable", str(exc))
            except StoreError as exc:
                reply = ("error", str(exc))
            except Exception as exc:  # a driver bug must reach the parent as an error, not kill this loop
                reply = ("error", f"{exc.__class__.__name__}: {exc}")
            conn.send(reply)
    finally:
        store.dispose()


class StoreProcess:
    """One child that runs `EventStore.write_rows` for this process; started on first use, restarted after death."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._lock = threading.Lock()  # one request in flight: replies come back in order
        self._proc: Any = None
        self._conn: Connection | None = None

    def write_rows(
        self, rows: list[list[object]], collapsed: dict[tuple[str, str], int], quarantine: list[QuarantineItem]
    ) -> set[str]:
        return self._call((rows, collapsed, quarantine))

    def start(self) -> None:
        """Start the child now and wait until it is ready, instead of on the first write."""
        self._call("ping")

    def _call(self, request: object) -> set[str]:
        with self._lock:
            conn = self._ensure_started()
            try:
                conn.send(request)
                status, value = conn.recv()
            except (EOFError, OSError, BrokenPipeError) as exc:
                self._reap()
                reason = f"store process died ({exc.__class__.__name__}); the batch was not stored"
                raise StoreUnavailable(reason) from None
        if status == "ok":
            return value
        if status == "unavailable":
            raise StoreUnavailable(value)
        raise StoreError(value)

    def _ensure_started(self) -> Connection:
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            return self._conn
        self._reap()
        parent, child = _CONTEXT.Pipe()
        proc = _CONTEXT.Process(
            target=_child_main, args=(child, self.database_url), name="stackwatch-store", daemon=True
        )
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        log.info("store process started", extra={"pid": proc.pid})
        return parent

    def _reap(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            self._proc.join(timeout=5)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(timeout=5)
            if self._proc.exitcode not in (0, None):
                log.warning("store process exited", extra={"exitcode": self._proc.exitcode})
        self._proc = self._conn = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.is_alive() else None

    def close(self) -> None:
        with self._lock:
            self._reap()


class ProcessEventStore(EventStore):
    """An EventStore that writes through a `StoreProcess`; everything else runs here as usual."""

    def __init__(self, engine: Engine, database_url: str) -> None:
        super().__init__(engine)
        self.writer = StoreProcess(database_url)

    def write_rows(
        self, rows: list[list[object]], collapsed: dict[tuple[str, str], int], quarantine: list[QuarantineItem]
    ) -> set[str]:
        if self.dialect == "sqlite":
            sqlite_ready(rows)  # the child is the busier side of the pair on SQLite: format times here
        return self.writer.write_rows(rows, collapsed, quarantine)

    @property
    def concurrent_writers(self) -> int:
        return 1  # one child, one transaction at a time

    def dispose(self) -> None:
        self.writer.close()
        super().dispose()
