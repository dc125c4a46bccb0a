"""The process writer: the broker connection stays in this process, converting and writing run in a child.

`ProcessCatcherRunner` ships each batch's raw bodies to a spawned child that runs an ordinary pipelined
`CatcherRunner` (convert || write) on its own store, and acknowledges the broker when the child reports a
batch stored. A dead child is replaced and the batches it had not reported are sent again: the store's
unique index makes the resend harmless for stored events; the new child decides flood control afresh, so
events it collapses count again if the dead child had committed their batch (an over-count, never a loss:
docs/events.md). The child's runner classifies store errors and splits refused batches like any
`CatcherRunner` (store/errors.py). Chosen with `worker catcher --writer process`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stackwatch.events.monitors.base import Availability, Batch, Monitor
from stackwatch.events.runner import REPORT_FIELDS, BatchCounts, CatcherRunner, OnStored

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import ProviderConfig

log = logging.getLogger(__name__)


class _PipeMonitor(Monitor):
    """Inside the writer process: batches arrive from the parent over a pipe, acks go back over another."""

    name = "pipe"

    def __init__(self, provider: ProviderConfig, inbox: Any, outbox: Any) -> None:
        super().__init__(provider)
        self.inbox, self.outbox = inbox, outbox
        self.reports: dict[int, dict[str, int]] = {}

    @classmethod
    def available(cls, provider: ProviderConfig) -> Availability:  # pragma: no cover - never selected
        return Availability(False, "internal")

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def batches(self) -> Iterator[Batch]:
        from stackwatch.events.model import RawMessage

        while True:
            try:
                msg = self.inbox.recv()
            except (EOFError, OSError):
                return  # the parent is gone: stop; anything unacknowledged is redelivered to its successor
            if msg is None:
                return
            seq, source, items = msg
            yield Batch(tuple(RawMessage(body, source, None, datetime.fromtimestamp(ts, UTC)) for body, ts in items),
                        seq)

    def ack(self, batch: Batch) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.outbox.send((batch.seq, self.reports.pop(batch.seq, {})))


def _writer_main(inbox: Any, outbox: Any, database_url: str, provider_doc: dict[str, Any], routes: Any,
                 log_level: int) -> None:
    """Entry point of the writer process: a pipelined runner (convert || write) fed by the parent."""
    from stackwatch.config.settings import ProviderConfig
    from stackwatch.events.catcher import Catcher
    from stackwatch.gctune import tune_for_intake
    from stackwatch.logs import setup_logging
    from stackwatch.store.db import open_store
    from stackwatch.switchboard.routes import RoutingTable

    setup_logging(logging.getLevelName(log_level))
    provider = ProviderConfig.model_validate(provider_doc)
    store = open_store(database_url, migrate=False)
    monitor = _PipeMonitor(provider, inbox, outbox)

    def keep_report(batch: Batch, report: Any, _elapsed: float) -> None:
        monitor.reports[batch.seq] = {k: int(getattr(report, k, 0) or 0) for k in REPORT_FIELDS}

    runner = CatcherRunner(monitor, Catcher(store, provider, RoutingTable.load(routes)), on_stored=keep_report)
    tune_for_intake()
    try:
        runner.run()
    finally:
        store.dispose()


class ProcessCatcherRunner(CatcherRunner):
    """monitor -> writer *process* -> ack: the same contract as `CatcherRunner`, on two cores.

    Receiving (pika) stays in this process; converting and writing run in a child process (spawned, with its
    own store connection), so the GIL does not serialise them. At most `max_inflight` batches are handed to
    the child unacknowledged (bounded). The child retries a down store itself; if the child dies, a new one
    is spawned and every unacknowledged batch is sent again, in order (the unique message_id absorbs what
    the old child had already written).
    """

    def __init__(self, monitor: Monitor, database_url: str, *, routes: Any = None, max_inflight: int = 3,
                 on_stored: OnStored | None = None) -> None:
        super().__init__(monitor, None, on_stored=on_stored)
        self.database_url = database_url
        self.routes = routes
        self.max_inflight = max(1, max_inflight)
        self._inflight: collections.deque[tuple[Batch, float]] = collections.deque()
        self._cond = threading.Condition()
        self._child: Any = None
        self._to_child: Any = None
        self._from_child: Any = None
        self._child_gen = 0
        self.child_restarts = -1

    def _spawn(self) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        inbox_r, inbox_w = ctx.Pipe(duplex=False)
        outbox_r, outbox_w = ctx.Pipe(duplex=False)
        routes = getattr(self, "routes", None)
        child = ctx.Process(
            target=_writer_main,
            args=(inbox_r, outbox_w, self.database_url, self.monitor.provider.model_dump(mode="json"), routes,
                  logging.getLogger().getEffectiveLevel()),
            name=f"stackwatch-writer-{self.provider}", daemon=True,
        )
        child.start()
        inbox_r.close()
        outbox_w.close()
        self._child, self._to_child, self._from_child = child, inbox_w, outbox_r
        self._spawned_at = time.monotonic()
        self._child_gen += 1
        self.child_restarts += 1
        threading.Thread(target=self._read_acks, args=(outbox_r, self._child_gen),
                         name=f"acks-{self.provider}", daemon=True).start()

    def _send(self, batch: Batch) -> None:
        items = [(m.body, (m.received_at.timestamp() if m.received_at else time.time())) for m in batch.messages]
        source = batch.messages[0].source if batch.messages else "unknown"
        self._to_child.send((batch.seq, source, items))

    def _respawn_and_resend(self) -> None:
        """Called with the condition held."""
        log.warning("catcher %s: writer process gone; starting a new one and resending %d batch(es)",
                    self.provider, len(self._inflight))
        self._kill_child()
        self._spawn()
        for batch, _ in self._inflight:
            self._send(batch)

    def _kill_child(self) -> None:
        for end in (self._to_child, self._from_child):
            with contextlib.suppress(Exception):
                end.close()
        if self._child is not None and self._child.is_alive():
            self._child.terminate()
            self._child.join(5)

    def _read_acks(self, conn: Any, gen: int) -> None:
        while True:
            try:
                seq, counts = conn.recv()
            except (EOFError, OSError):
                self._on_child_dead(gen)
                return
            with self._cond:
                if not self._inflight or self._inflight[0][0].seq != seq:
                    continue  # a stale ack from a replaced child, or a resend's duplicate
                batch, sent_at = self._inflight.popleft()
                self._cond.notify_all()
            report = BatchCounts(counts)
            self.stats.add(batch, report)
            if self.on_stored is not None:
                self.on_stored(batch, report, time.monotonic() - sent_at)
            self.monitor.ack(batch)

    _closing = False
    _respawning = False
    _spawned_at = 0.0

    def _on_child_dead(self, gen: int) -> None:
        """The child of generation `gen` is gone: replace it and resend what it had not acknowledged.

        Called by the ack reader on EOF (so a dead child is replaced even when no new batch arrives) or
        by the sender on a broken pipe; the generation check makes the second caller a no-op.
        """
        with self._cond:
            if gen != self._child_gen or self._closing or self._respawning:
                return
            self._respawning = True
            try:
                lived = time.monotonic() - self._spawned_at
                if lived < 2.0:  # dying at once (bad database URL, ...): do not spin
                    self._cond.wait(random.uniform(1.0, 3.0))
                if not self._closing and not self._stop.is_set():
                    self._respawn_and_resend()
            finally:
                self._respawning = False
                self._cond.notify_all()

    def _run_loop(self) -> None:
        """`CatcherRunner.run`'s loop: hand each batch to the child, at most `max_inflight` unacknowledged."""
        with self._cond:
            self._spawn()
        for batch in self.monitor.batches():
            with self._cond:
                while not self._stop.is_set() and len(self._inflight) >= self.max_inflight:
                    self._cond.wait(0.5)
                if self._stop.is_set():
                    return
                self._inflight.append((batch, time.monotonic()))
                gen = self._child_gen
                try:
                    self._send(batch)
                except (OSError, ValueError):
                    self._on_child_dead(gen)

    def _after_run(self) -> None:
        self._shutdown_child()

    def _shutdown_child(self) -> None:
        # Let the child finish what it holds (bounded wait), then close its pipe so it exits.
        deadline = time.monotonic() + 5.0
        with self._cond:
            while self._inflight and self._child is not None and self._child.is_alive() \
                    and time.monotonic() < deadline:
                self._cond.wait(0.1)
            self._closing = True
        with contextlib.suppress(Exception):
            self._to_child.send(None)
        if self._child is not None:
            self._child.join(5)
        self._kill_child()
