"""Run a monitor into the catcher for one provider: receive, store, then acknowledge.

The monitor receives the next batch while this loop stores the current one (the monitor's hand-off holds
at most one waiting batch and the broker's prefetch bounds the rest, so nothing grows without limit).
When the store is down (`StoreUnavailable`) the same batch is retried with jittered back-off and nothing
is acknowledged: the source keeps the messages. stackwatch/wiring.py builds one such loop per provider for
`stackwatch serve` and `stackwatch worker catcher`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stackwatch.events.monitors.base import Batch, Monitor
from stackwatch.store.errors import StoreUnavailable

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
        self.retry_min = retry_min
        self.retry_max = retry_max
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
        if self.pipelined and hasattr(self.catcher, "prepare") and hasattr(self.catcher, "commit"):
            self._run_pipelined()
        else:
            self._run_sequential()

    def _after_run(self) -> None:
        """After the monitor stopped, whether the loop ended or failed (a subclass's clean-up)."""

    def _run_sequential(self) -> None:
        for batch in self.monitor.batches():
            if not self._store(batch, lambda b=batch: self.catcher.catch(b.messages)):
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
                prepared = self._prepare(batch)
                if prepared is None:
                    return
                if self.writers > 1 and getattr(prepared, "collapsed_into", None):
                    self._wait_for_earlier_batches()  # their rows must be committed before counts go onto them
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
            if not self._store(batch, lambda p=prepared: self.catcher.commit(p)):
                self._stop.set()  # stopping while the store is down: the other writers stop too
                return
            self._completed(batch)

    def _wait_for_earlier_batches(self) -> None:
        while not self._stop.is_set():
            with self._order_lock:
                if not self._order:
                    return
            time.sleep(0.001)

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

    def _store(self, batch: Batch, write: Callable[[], Any]) -> bool:
        """Write `batch`; retry while the store is unavailable. False when stopped before it was stored.

        An error that is not `StoreUnavailable` (the database is up but refuses this batch) is retried
        `split_after` times, then the batch is written in halves to isolate the message it refuses; a single
        refused message is kept in the quarantine with the error, so one poison message cannot stall the
        stream and nothing is acknowledged without being kept.
        """
        failures = refused = 0
        while True:
            started = time.monotonic()
            try:
                report = write()
            except StoreUnavailable as exc:
                failures += 1
                self._note_failure(exc, failures, len(batch), "store unavailable")
            except Exception as exc:  # noqa: BLE001 - never ack what was not stored; keep trying
                failures += 1
                refused += 1
                self._note_failure(exc, failures, len(batch), "store refused a batch")
                if refused >= self.split_after and hasattr(self.catcher, "catch"):
                    report = self._store_split(list(batch.messages), exc)
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
        if failures:
            log.warning("catcher %s: batch stored after %d failed attempts", self.provider, failures)
        if self.on_stored is not None:
            self.on_stored(batch, report, elapsed)

    def _store_split(self, messages: list[Any], error: BaseException) -> Any:
        """Store `messages` in halves (recursively); quarantine a lone message the store keeps refusing.
        Returns the summed report, or None when stopped first."""
        total = BatchCounts({})
        pending = [messages]
        while pending:
            part = pending.pop(0)
            failures = 0
            while True:
                try:
                    report = self.catcher.catch(part)
                except StoreUnavailable as exc:
                    failures += 1
                    self._note_failure(exc, failures, len(part), "store unavailable")
                except Exception as exc:  # noqa: BLE001
                    if len(part) > 1:
                        half = len(part) // 2
                        pending[:0] = [part[:half], part[half:]]
                        break
                    report = self._quarantine_last_resort(part[0], exc)
                    if report is None:
                        failures += 1
                    else:
                        total.add(report)
                        break
                else:
                    total.add(report)
                    break
                if self._wait_backoff(failures or 1):
                    return None
        return total

    def _quarantine_last_resort(self, message: Any, exc: BaseException) -> Any:
        from stackwatch.store.events import QuarantineItem

        reason = f"store refused this event: {type(exc).__name__}: {str(exc)[:500]}"
        received = message.received_at or datetime.now(UTC)
        try:
            self.catcher.store.write_batch(
                [], quarantine=[QuarantineItem(self.provider, message.source, reason, bytes(message.body), received)]
            )
        except Exception as again:  # noqa: BLE001 - not kept: do not acknowledge, try again later
            self._note_failure(again, 1, 1, "cannot quarantine a refused event")
            return None
        log.error("catcher %s: %s (quarantined)", self.provider, reason)
        return BatchCounts({"quarantined": 1})

    def _wait_backoff(self, failures: int) -> bool:
        """Sleep a jittered, growing delay; True when stopped meanwhile."""
        delay = min(self.retry_max, self.retry_min * 2 ** min(failures - 1, 16))
        return self._stop.wait(random.uniform(delay / 2, delay))

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
