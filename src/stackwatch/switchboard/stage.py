"""The handler stage: each handler reads the stored event stream from its own persisted position.

For every handler (refresh, policy; later rules and push) and every partition (a provider), one loop:
claim the lease on the position, read the next events after it, hand them to the handler, and save the new
position only when the handler returned. So:

- it works whichever process caught the events (`serve`, `stackwatch worker catcher`, `events ingest`);
- a crash repeats at most the batch that was being handled, and skips nothing (the position moves after
  the work); a batch handled twice is safe because handlers are idempotent (a refresh re-reads the API);
- a handler that fails (Nova's API down) retries the same batch with back-off, without holding up the other
  handlers or the other providers, and nothing is dropped;
- two processes running handlers never handle the same partition at once (the position is a lease).

The batch read is the coalescing window: a burst of events about three servers becomes one refresh of three
servers. `poll_seconds` bounds how long a new event waits when the stream was idle.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from stackwatch.backoff import Backoff
from stackwatch.events.model import Event
from stackwatch.store.stream import EventStream, HandlerPositions, StreamPosition

log = logging.getLogger(__name__)


class StreamHandler(Protocol):
    """Handles a batch of stored events of one provider; raises to have the same batch retried later."""

    name: str

    def handle(self, events: Sequence[Event]) -> None: ...


@dataclass
class PartitionState:
    """One (handler, partition) loop's state in this process."""

    position: StreamPosition | None = None  # None: not held (yet)
    lease_renew_at: float = 0.0
    failures: int = 0
    retry_at: float = 0.0
    handled: int = 0
    last_error: str | None = None


@dataclass
class HandlerStats:
    handled: int = 0
    batches: int = 0
    failures: int = 0
    partitions: dict[str, PartitionState] = field(default_factory=dict)


class HandlerStage:
    """Runs `handlers` over the stream, one thread per handler, each over the partitions `partitions()` names."""

    def __init__(
        self,
        stream: EventStream,
        positions: HandlerPositions,
        handlers: Sequence[StreamHandler],
        partitions: Callable[[str], Sequence[str]],
        *,
        batch_size: int = 500,
        poll_seconds: float = 0.2,
        backoff: Backoff | None = None,
    ) -> None:
        self.stream = stream
        self.positions = positions
        self.handlers = list(handlers)
        self.partitions = partitions
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.backoff = backoff or Backoff(0.5, 15.0)
        self.stats = {h.name: HandlerStats() for h in self.handlers}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lease_seconds = positions.lease.total_seconds()

    def start(self) -> HandlerStage:
        for handler in self.handlers:
            thread = threading.Thread(target=self._run, args=(handler,), name=f"handler-{handler.name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Finish the batches being handled, save their positions, give the leases up."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        for handler in self.handlers:
            for partition, state in self.stats[handler.name].partitions.items():
                if state.position is not None:
                    try:
                        self.positions.release(handler.name, partition)
                    except Exception:  # noqa: BLE001 - the lease then runs out by itself
                        log.warning("could not release a handler lease", exc_info=True,
                                    extra={"handler": handler.name, "partition": partition})
        for handler in self.handlers:
            close = getattr(handler, "close", None)
            if close is not None:
                close()

    def holds(self, handler: str, partition: str) -> bool:
        """Whether this process currently handles `partition` for `handler` (it holds the lease)."""
        state = self.stats[handler].partitions.get(partition)
        return state is not None and state.position is not None

    def run_once(self, handler: StreamHandler) -> bool:
        """One pass over `handler`'s partitions; True when it handled something (tests drive it directly)."""
        busy = False
        stats = self.stats[handler.name]
        for partition in self.partitions(handler.name):
            state = stats.partitions.setdefault(partition, PartitionState())
            now = time.monotonic()
            if state.retry_at > now:
                continue
            try:
                busy |= self._step(handler, partition, state, now)
            except Exception as exc:  # noqa: BLE001 - the batch stays unhandled; retried after a back-off
                state.failures += 1
                stats.failures += 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                delay = self.backoff.delay(state.failures)
                state.retry_at = time.monotonic() + delay
                log.warning("handler failed; the batch is retried", exc_info=state.failures == 1,
                        extra={"handler": handler.name, "partition": partition, "attempt": state.failures,
                               "retry_in_seconds": round(delay, 2), "error": state.last_error})
        return busy

    def _step(self, handler: StreamHandler, partition: str, state: PartitionState, now: float) -> bool:
        if state.position is None or now >= state.lease_renew_at:
            state.position = self.positions.claim(handler.name, partition, start=self.stream.head)
            state.lease_renew_at = now + self._lease_seconds / 3
            if state.position is None:
                return False  # another process holds it
        items = self.stream.read(partition, state.position, self.batch_size)
        if not items:
            return False
        handler.handle([item.event for item in items])
        if not self.positions.advance(handler.name, partition, items[-1].position, len(items)):
            log.warning("handler lease lost; another process goes on from the saved position",
                        extra={"handler": handler.name, "partition": partition})
            state.position = None
            return False
        if state.failures:
            log.info("handler recovered", extra={"handler": handler.name, "partition": partition,
                                                 "after_attempts": state.failures})
        state.position = items[-1].position
        state.lease_renew_at = time.monotonic() + self._lease_seconds / 3
        state.failures = 0
        state.retry_at = 0.0
        state.handled += len(items)
        stats = self.stats[handler.name]
        stats.handled += len(items)
        stats.batches += 1
        return True

    def _run(self, handler: StreamHandler) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_once(handler)
            except Exception:  # noqa: BLE001 - a bug in the loop itself: keep the thread, slow down
                log.exception("handler loop failed", extra={"handler": handler.name})
                busy = False
            if not busy:
                self._stop.wait(self.poll_seconds)
