"""Run a monitor into the catcher for one provider: receive, store, then acknowledge.

The monitor receives the next batch while this loop stores the current one (the monitor's hand-off holds
at most one waiting batch and the broker's prefetch bounds the rest, so nothing grows without limit).
When the store is down (`StoreUnavailable`) the same batch is retried with jittered back-off and nothing
is acknowledged: the source keeps the messages. A batch is prepared (converted, flood control decided) once;
retries and the parts of a refused batch reuse it. stackwatch/wiring.py builds one such loop per provider for
`stackwatch serve` and `stackwatch worker catcher`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stackwatch import selfmetrics
from stackwatch.backoff import Backoff
from stackwatch.events.monitors.base import Batch, Monitor
from stackwatch.store.errors import is_unavailable

log = logging.getLogger(__name__)

_END = object()

#: Called after a batch is stored and before it is acknowledged: (batch, report, seconds spent storing).
OnStored = Callable[[Batch, Any, float], None]


@dataclass
class RunnerStats:
    batches: int = 0
    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    filtered: int = 0
    collapsed: int = 0
    store_failures: int = 0
    last_error: str | None = None
    started_at: float = field(default_factory=time.monotonic)

    def add(self, batch: Batch, report: Any) -> None:
        self.batches += 1
        self.messages += len(batch)
        for name in ("stored", "duplicates", "quarantined", "filtered", "collapsed"):
            setattr(self, name, getattr(self, name) + int(getattr(report, name, 0) or 0))


class CatcherRunner:
    """monitor -> catcher -> ack for one provider, in the calling thread (`run`) or a thread (`start`)."""

    def __init__(
        self,
        monitor: Monitor,
        catcher: Any,
        *,
        retry_min: float = 0.5,
        retry_max: float = 15.0,
        on_stored: OnStored | None = None,
        pipelined: bool = True,
        writers: int = 1,
        split_after: int = 3,
    ) -> None:
        self.monitor = monitor
        self.catcher = catcher
        self.backoff = Backoff(retry_min, retry_max)
        self.on_stored = on_stored
        self.pipelined = pipelined
        #: concurrent store transactions (each its own connection); acks stay in order
        self.writers = max(1, writers)
        self.split_after = max(1, split_after)
        self.stats = RunnerStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def provider(self) -> str:
        return self.monitor.provider.name

    def run(self) -> None:
        """Receive, store, acknowledge until stopped. Pipelined when the catcher can split its work:
        batch N is written (database drivers release the GIL) while batch N+1 is converted and batch N+2
        is received."""
        self.monitor.start()
        try:
            self._run_loop()
        except BaseException as exc:
            self.error = exc
            log.exception("catcher %s: runner failed", self.provider)
            raise
        finally:
            self.monitor.stop()
            self._after_run()

    def _run_loop(self) -> None:
        if self.pipelined:
            self._run_pipelined()
        else:
            self._run_sequential()

    def _after_run(self) -> None:
        """After the monitor stopped, whether the loop ended or failed (a subclass's clean-up)."""

    def _run_sequential(self) -> None:
        for batch in self.monitor.batches():
            prepared = self._prepare(batch)
            if prepared is None or not self._store(batch, prepared):
                return  # stopping while the store is down: leave the batch unacknowledged
            self.monitor.ack(batch)
            if self._stop.is_set():
                return

    def _run_pipelined(self) -> None:
        handoff: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._order: collections.deque[Batch] = collections.deque()
        self._done: set[int] = set()
        self._order_lock = threading.Lock()
        writers = [
            threading.Thread(target=self._write_loop, args=(handoff,), name=f"store-{self.provider}-{i}",
                             daemon=True)
            for i in range(self.writers)
        ]
        for writer in writers:
            writer.start()
        try:
            for batch in self.monitor.batches():
                # each batch is its own transaction, flood counts included (their anchors are in the same
                # batch, events/flood.py): the writers never wait for one another
                prepared = self._prepare(batch)
                if prepared is None:
                    return
                with self._order_lock:
                    self._order.append(batch)
                while True:
                    if self._stop.is_set() or not all(w.is_alive() for w in writers):
                        return
                    try:
                        handoff.put((batch, prepared), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
        finally:
            self._stop_writers(handoff, writers)

    def _stop_writers(self, handoff: queue.Queue[Any], writers: list[threading.Thread]) -> None:
        for _ in writers:
            while any(w.is_alive() for w in writers):
                try:
                    handoff.put(_END, timeout=0.2)
                    break
                except queue.Full:
                    if self._stop.is_set():
                        # not written yet and we are stopping: drop it, it stays unacknowledged
                        with contextlib.suppress(queue.Empty):
                            handoff.get_nowait()
        for writer in writers:
            writer.join()

    def _write_loop(self, handoff: queue.Queue[Any]) -> None:
        while True:
            item = handoff.get()
            if item is _END:
                return
            batch, prepared = item
            if not self._store(batch, prepared):
                self._stop.set()  # stopping while the store is down: the other writers stop too
                return
            self._completed(batch)

    def _completed(self, batch: Batch) -> None:
        """Acknowledge in batch order: with several writers, batch N+1 may commit before batch N."""
        with self._order_lock:
            self._done.add(batch.seq)
            while self._order and self._order[0].seq in self._done:
                head = self._order.popleft()
                self._done.discard(head.seq)
                self.monitor.ack(head)

    def _prepare(self, batch: Batch) -> Any:
        """The CPU half (decode, filter, convert); it quarantines bad input itself and should not raise."""
        failures = 0
        while True:
            try:
                return self.catcher.prepare(batch.messages)
            except Exception as exc:  # noqa: BLE001 - a bug: never ack, keep trying slowly
                failures += 1
                self._note_failure(exc, failures, len(batch), "unexpected error converting a batch")
            if self._wait_backoff(failures):
                return None

    def _store(self, batch: Batch, prepared: Any) -> bool:
        """Write the prepared `batch`; retry while the store is unavailable. False when stopped before it was stored.

        Every failure is classified by its cause (`store.errors.is_unavailable`): a store that cannot be
        written now is retried with back-off for ever, nothing acknowledged meanwhile. A refusal (the database
        is up but refuses what the batch holds) is retried `split_after` times, then the batch is written in
        parts to isolate what it refuses (`_store_split`), so one poison message cannot stall the stream and
        nothing is acknowledged without being kept. Retries and parts reuse the prepared batch: flood control
        decided each message once.
        """
        failures = refused = 0
        while True:
            started = time.monotonic()
            try:
                report = self.catcher.commit(prepared)
            except Exception as exc:  # noqa: BLE001 - never ack what was not stored; keep trying
                failures += 1
                if is_unavailable(exc):
                    self._note_failure(exc, failures, len(batch), "store unavailable")
                else:
                    refused += 1
                    self._note_failure(exc, failures, len(batch), "store refused a batch")
                    if refused >= self.split_after:
                        report = self._store_split(prepared)
                        if report is None:
                            return False
                        self._stored(batch, report, time.monotonic() - started, failures)
                        return True
            else:
                self._stored(batch, report, time.monotonic() - started, failures)
                return True
            if self._wait_backoff(failures):
                return False

    def _stored(self, batch: Batch, report: Any, elapsed: float, failures: int) -> None:
        self.stats.add(batch, report)
        selfmetrics.record_batch(self.provider, self.monitor.name, report, elapsed)
        if failures:
            log.warning("catcher %s: batch stored after %d failed attempts", self.provider, failures)
        if self.on_stored is not None:
            self.on_stored(batch, report, elapsed)

    def _store_split(self, prepared: Any) -> Any:
        """Store a refused prepared batch in parts (recursively halved, `PreparedBatch.split`); a lone record
        the store keeps refusing goes to the quarantine whole and the next event counted onto it takes its
        place (`Catcher.refused_alone`). Returns the summed report, or None when stopped first."""
        from stackwatch.events.catcher import CatchReport

        total = CatchReport()
        pending = [prepared]
        while pending:
            part = pending.pop(0)
            failures = 0
            while True:
                try:
                    report = self.catcher.commit(part)
                except Exception as exc:  # noqa: BLE001
                    if is_unavailable(exc):
                        failures += 1
                        self._note_failure(exc, failures, part.size, "store unavailable")
                    elif part.size > 1:
                        pending[:0] = part.split()
                        break
                    elif part.records:
                        pending.insert(0, self.catcher.refused_alone(part, exc))
                        break
                    else:  # the quarantine itself is refused: it cannot be kept, so it is not acknowledged
                        failures += 1
                        self._note_failure(exc, failures, part.size, "cannot quarantine a refused event")
                else:
                    total.add(report)
                    total.stored_records.extend(report.stored_records)
                    break
                if self._wait_backoff(failures or 1):
                    return None
        return total

    def _wait_backoff(self, failures: int) -> bool:
        """Sleep a jittered, growing delay; True when stopped meanwhile."""
        return self.backoff.wait(failures, self._stop)

    def _note_failure(self, exc: BaseException, failures: int, size: int, what: str) -> None:
        self.stats.store_failures += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"
        level = logging.WARNING if failures == 1 or failures % 10 == 0 else logging.DEBUG
        log.log(level, "catcher %s: %s (attempt %d), batch of %d kept unacknowledged: %s",
                self.provider, what, failures, size, self.stats.last_error)

    def start(self) -> CatcherRunner:
        self._thread = threading.Thread(target=self._run_quietly, name=f"catcher-{self.provider}", daemon=True)
        self._thread.start()
        return self

    def _run_quietly(self) -> None:
        with contextlib.suppress(BaseException):
            self.run()

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        self.monitor.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


REPORT_FIELDS = ("stored", "duplicates", "quarantined", "filtered", "collapsed")


class BatchCounts:
    """Counts of a stored batch (what `CatchReport` carries, without the events)."""

    def __init__(self, counts: dict[str, int]) -> None:
        for name in REPORT_FIELDS:
            setattr(self, name, counts.get(name, 0))

    def add(self, other: Any) -> None:
        for name in REPORT_FIELDS:
            setattr(self, name, getattr(self, name) + int(getattr(other, name, 0) or 0))
