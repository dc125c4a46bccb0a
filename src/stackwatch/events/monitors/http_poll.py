"""The polling half every HTTP monitor shares (panko, http): poll cycles, back-off, a persisted cursor.

A subclass yields `(messages, position)` pairs from `poll()`, one per page; each page becomes a Batch whose
token is the cursor *after* that page. The runner stores the batch, then `ack` saves the token in the store's
`monitor_cursors` table (one row per provider and monitor), so a restart resumes from the last stored page:
nothing is lost (the page after it is read again) and history is not read again. While the service is down
or answers 5xx the cycle is abandoned and retried with the shared back-off; `stop()` ends it at once.
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from stackwatch.backoff import Backoff
from stackwatch.events.model import RawMessage
from stackwatch.events.monitors.base import Batch, Monitor
from stackwatch.events.monitors.http_client import SourceRefused, SourceUnavailable

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import ProviderConfig

log = logging.getLogger(__name__)

Page = tuple[list[RawMessage], Any]


class CursorStore:
    """What a polling monitor needs of the store (EventStore has both methods)."""

    def get_cursor(self, provider: str, monitor: str) -> object | None:  # pragma: no cover - protocol
        raise NotImplementedError

    def set_cursor(self, provider: str, monitor: str, position: object) -> None:  # pragma: no cover
        raise NotImplementedError


class PollingMonitor(Monitor):
    """Poll an HTTP event service every `interval` seconds; see the module docstring."""

    interval: float = 15.0
    #: a refused request (4xx: bad credentials, wrong URL) is retried this much later, never in a hot loop
    refused_retry_seconds: float = 30.0

    def __init__(self, provider: ProviderConfig) -> None:
        super().__init__(provider)
        self._stop = threading.Event()
        self._store: Any = None
        self._seq = 0
        self.backoff = Backoff(0.5, 15.0)
        self.counters: dict[str, Any] = {"polls": 0, "pages": 0, "received": 0, "acked": 0, "unavailable": 0,
                                         "refused": 0}
        self.last_error: str | None = None
        self.cycle_done = threading.Event()  # set after every completed poll cycle (tests wait on it)

    # -- cursor persistence -----------------------------------------------------------------------------
    def bind_store(self, store: CursorStore | None) -> None:
        """Where the cursor is persisted; without one (a bare monitor in a test) it lives in memory only."""
        self._store = store

    def load_position(self) -> Any:
        if self._store is None:
            return None
        return self._store.get_cursor(self.provider.name, self.name)

    def save_position(self, position: Any) -> None:
        if self._store is None or position is None:
            return
        try:
            self._store.set_cursor(self.provider.name, self.name, position)
        except Exception as exc:  # noqa: BLE001 - the events are stored; an old cursor only re-reads them
            log.warning("monitor %s/%s: cursor not saved (%s); a restart re-reads from the previous one",
                        self.provider.name, self.name, exc)

    # -- plugin contract --------------------------------------------------------------------------------
    def start(self) -> None:
        """Nothing to connect: the first poll opens the session (and retries if the service is down)."""

    def stop(self) -> None:
        self._stop.set()

    def ack(self, batch: Batch) -> None:
        self.counters["acked"] += len(batch)
        self.save_position(batch.token)

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "last_error": self.last_error}

    @abc.abstractmethod
    def poll(self) -> Iterator[Page]:
        """One poll cycle: a `(messages, cursor after them)` pair per page read; raise SourceUnavailable /
        SourceRefused to end the cycle early."""

    def batches(self) -> Iterator[Batch]:
        failures = 0
        while not self._stop.is_set():
            self.counters["polls"] += 1
            try:
                for messages, position in self.poll():
                    self.counters["pages"] += 1
                    if self._stop.is_set():
                        return
                    if messages:
                        self._seq += 1
                        self.counters["received"] += len(messages)
                        yield Batch(tuple(messages), self._seq, position)
                failures = 0
                self.last_error = None
            except SourceUnavailable as exc:
                failures += 1
                self.counters["unavailable"] += 1
                self._note(exc, failures)
                if self.backoff.wait(failures, self._stop):
                    return
                continue
            except SourceRefused as exc:
                self.counters["refused"] += 1
                self._note(exc, 1, level=logging.ERROR)
                if self._stop.wait(max(self.interval, self.refused_retry_seconds)):
                    return
                continue
            self.cycle_done.set()
            if self._stop.wait(self.interval):
                return

    def _note(self, exc: Exception, failures: int, level: int = logging.WARNING) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        if failures == 1 or failures % 10 == 0:
            log.log(level, "monitor %s/%s: %s (attempt %d); retrying", self.provider.name, self.name,
                    self.last_error, failures)
