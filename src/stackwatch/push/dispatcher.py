"""The dispatcher: a thread pool that sends the outbox's due deliveries, fairly between owners.

One loop claims due deliveries (push/outbox.py) and hands each to the sender of its kind (`webhook`, and the
kinds rules and push register: `refresh`, `fleece`, `log`, ...) on a worker thread, then records the outcome.
Fairness: each (source, owner) may have at most `per_owner` deliveries in flight, and the claim reads a few
rows per owner, so a receiver that hangs until its timeout occupies at most `per_owner` workers and every
other owner keeps being served. A kind may be capped (`kind_limits={"fleece": 2}`): more are left queued.

A handler that enqueued calls `wake()` so a new delivery goes out at once rather than at the next poll; the
poll (`poll_seconds`) finds retries that came due. A delivery whose sender raises is retried like a
connection error: a bug in one sender must not lose the delivery.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from stackwatch.masking import mask_text
from stackwatch.push.outbox import ClaimBudget, Delivery, Outbox
from stackwatch.push.outcome import Outcome
from stackwatch.store.deliveries import SOURCES

log = logging.getLogger(__name__)

Sender = Callable[[Delivery], Outcome]


class Dispatcher:
    """Sends the due deliveries of `sources` with `senders` (by kind) on `workers` threads."""

    def __init__(
        self,
        outbox: Outbox,
        senders: Mapping[str, Sender],
        *,
        sources: Sequence[str] = SOURCES,
        workers: int = 8,
        per_owner: int = 2,
        kind_limits: Mapping[str, int] | None = None,
        poll_seconds: float = 0.5,
        coalesce_seconds: float = 0.005,
        name: str = "dispatcher",
    ) -> None:
        self.outbox = outbox
        self.senders = dict(senders)
        self.sources = tuple(sources)
        self.workers = max(1, workers)
        self.per_owner = max(1, per_owner)
        self.kind_limits = dict(kind_limits or {})
        self.poll_seconds = poll_seconds
        self.coalesce_seconds = coalesce_seconds
        self.name = name
        self.sent = Counter[str]()  # verdicts, for tests and stats
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix=f"{name}-send")
        self._lock = threading.Lock()
        self._inflight: dict[int, Delivery] = {}
        self._finished: queue.SimpleQueue[tuple[Delivery, Outcome, datetime]] = queue.SimpleQueue()
        self._by_owner = Counter[tuple[str, str]]()
        self._by_kind = Counter[str]()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._renew_at = 0.0
        self._sweep_at = 0.0

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> Dispatcher:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """Look for due deliveries now (called after an enqueue)."""
        self._wake.set()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop claiming, let the deliveries in flight finish (their outcomes are saved), close the senders."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=False)
        try:
            self._save_finished()
        except Exception:  # noqa: BLE001 - their leases run out; they are sent again (same key)
            log.warning("could not save the last outcomes", exc_info=True, extra={"dispatcher": self.name})
        for sender in self.senders.values():
            close = getattr(sender, "close", None)
            if close is not None:
                close()

    @property
    def inflight(self) -> int:
        """Deliveries claimed and not saved yet (being sent, or sent and waiting for the next pass)."""
        with self._lock:
            return len(self._inflight)

    # -- one pass -----------------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Save finished outcomes, claim what the free workers can take and submit it; returns how many were
        submitted."""
        self._save_finished()
        now = time.monotonic()
        if now >= self._sweep_at:
            self._sweep_at = now + 10.0
            self.outbox.free_dead_leases()
        if now >= self._renew_at:
            self._renew_at = now + self.outbox.lease.total_seconds() / 3
            with self._lock:
                ids = list(self._inflight)
            self.outbox.renew(ids)
        with self._lock:
            room = self.workers - len(self._inflight)
            busy_owners = [k for k, n in self._by_owner.items() if n >= self.per_owner]
            by_owner = Counter(self._by_owner)
            kind_room = {k: limit - self._by_kind[k] for k, limit in self.kind_limits.items()}
        if room <= 0:
            return 0
        budget = ClaimBudget(room, owner_room=lambda key: self.per_owner - by_owner[key], kind_room=kind_room)
        claimed = self.outbox.claim(budget, sources=self.sources, exclude_owners=busy_owners)
        for delivery in claimed:
            with self._lock:
                self._inflight[delivery.id] = delivery
                self._by_owner[delivery.owner_key] += 1
                self._by_kind[delivery.kind] += 1
            self._pool.submit(self._send, delivery)
        return len(claimed)

    def _send(self, delivery: Delivery) -> None:
        """On a worker thread: carry the delivery out and hand the outcome to the loop, which saves what the
        workers finished since its last pass in one transaction (one commit per pass, not per delivery)."""
        started_at = datetime.now(UTC)
        start = time.monotonic()
        sender = self.senders.get(delivery.kind)
        try:
            if sender is None:
                outcome = Outcome("final", error=f"no sender for kind {delivery.kind!r} in this process "
                                                 f"(known: {', '.join(sorted(self.senders))})")
            else:
                outcome = sender(delivery)
        except Exception as exc:  # noqa: BLE001 - a sender's bug: retried, never lost
            log.exception("delivery sender failed", extra={"delivery": delivery.id, "kind": delivery.kind})
            outcome = Outcome("retry", error=f"{type(exc).__name__}: {mask_text(str(exc))}")
        if not outcome.duration:
            outcome = Outcome(outcome.verdict, outcome.status, outcome.error, outcome.retry_after,
                              time.monotonic() - start)
        self._finished.put((delivery, outcome, started_at))
        self._wake.set()

    def _save_finished(self) -> None:
        """Save the outcomes the workers handed over, then free their slots."""
        results = []
        while True:
            try:
                results.append(self._finished.get_nowait())
            except queue.Empty:
                break
        if not results:
            return
        try:
            self.outbox.complete_many(results)
        except Exception:
            for item in results:  # saved at the next pass; their leases keep them from being sent again
                self._finished.put(item)
            raise
        with self._lock:
            for delivery, outcome, _ in results:
                self._inflight.pop(delivery.id, None)
                self._by_owner[delivery.owner_key] -= 1
                self._by_kind[delivery.kind] -= 1
                self.sent[outcome.verdict] += 1

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
                failures = 0
            except Exception:  # noqa: BLE001 - the database is away: try again, slower
                failures += 1
                log.warning("dispatcher pass failed", exc_info=failures == 1, extra={"dispatcher": self.name})
                self._stop.wait(min(15.0, 0.5 * 2 ** min(failures, 5)))
            # the next pass when something changed: a worker finished (its slot and its outcome), a handler
            # enqueued, or `poll_seconds` passed (retries that came due); a pass that claimed filled what it
            # could, so claiming again before one of those would only find the same rows
            self._wake.wait(self.poll_seconds)
            if self.inflight and not self._stop.is_set():
                # a worker finished: let the others finish too, so one pass saves and claims many (a pass costs
                # about the same for 1 delivery as for 30: its statements, not its rows)
                self._stop.wait(self.coalesce_seconds)

    def drain(self, timeout: float = 30.0, until: Callable[[], bool] | None = None) -> bool:
        """Run passes in this thread (no `start`) until nothing is due or in flight, or `until()` holds; for
        tests and one-shot commands. True when it finished within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            idle_before = not self.inflight
            submitted = self.run_once()
            if until is not None and until():
                return True
            if until is None and not submitted and idle_before and not self.inflight:
                return True  # nothing was due with every worker and owner free
            if not submitted:
                self._wake.wait(0.05)
                self._wake.clear()
        return False
