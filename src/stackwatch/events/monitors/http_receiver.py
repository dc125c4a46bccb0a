"""The ceilometer-http monitor: receives Ceilometer's `http://` event publisher (push), answers after storing.

The API route (`api/ingest.py`) turns each POST into raw messages and `submit`s them here; `batches()` hands
everything waiting to the runner as one batch (concurrent POSTs share one transaction: the publisher runs up to
64 in parallel), and `ack(batch)` releases the POSTs, which only then answer 2xx. The publisher never retries a
5xx or a timeout (the event is lost on Ceilometer's side), so the receiver answers fast and uses 5xx only when
the store cannot take the events in `store_timeout_seconds`. What cannot be converted is quarantined through
the store with its reason (`quarantine`) and answered 4xx.

A receiver registers itself in `RECEIVERS` while it runs, so it works in the process that runs the catchers
(`stackwatch serve`); `serve --no-catchers` has none and the route says so (503).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from stackwatch.events.model import RawMessage
from stackwatch.events.monitors.base import Availability, Batch, Monitor, MonitorConfigError
from stackwatch.events.monitors.http_config import CeilometerHttpConfig, parse_section

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import ProviderConfig
    from stackwatch.store.events import QuarantineItem

#: provider name -> the receiver running in this process
RECEIVERS: dict[str, CeilometerHttpMonitor] = {}
_REGISTRY_LOCK = threading.Lock()


class ReceiverStopped(RuntimeError):
    """The receiver stopped before the events were stored (they were not acknowledged)."""


def _section(provider: ProviderConfig) -> Any:
    return getattr(getattr(provider, "events", None), "ceilometer_http", None)


def config(provider: ProviderConfig) -> CeilometerHttpConfig:
    return parse_section(CeilometerHttpConfig, _section(provider), "events.ceilometer_http")


class CeilometerHttpMonitor(Monitor):
    name = "ceilometer-http"
    priority = 80

    def __init__(self, provider: ProviderConfig) -> None:
        super().__init__(provider)
        self.cfg = config(provider)
        self._inbox: queue.Queue[tuple[list[RawMessage], Future[bool]]] = queue.Queue()
        self._stop = threading.Event()
        self._seq = 0
        self._store: Any = None
        self.counters = {"posts": 0, "received": 0, "acked": 0, "quarantined": 0}

    @classmethod
    def available(cls, provider: ProviderConfig) -> Availability:
        events = getattr(provider, "events", None)
        section = _section(provider)
        if section is None and getattr(events, "monitor", "auto") != cls.name:
            return Availability(False, "no events.ceilometer_http section for this provider")
        try:
            cfg = config(provider)
        except MonitorConfigError as exc:
            return Availability(False, f"invalid configuration: {exc}", misconfigured=True)
        auth = "HTTP Basic auth" if cfg.username else "no auth"
        return Availability(True, f"receives Ceilometer's http publisher at POST /api/v1/ingest/ceilometer/"
                                  f"{provider.name} ({auth}) in `stackwatch serve`")

    def bind_store(self, store: Any) -> None:
        """The store the quarantine of refused bodies is written to (the events go through the catcher)."""
        self._store = store

    def start(self) -> None:
        with _REGISTRY_LOCK:
            RECEIVERS[self.provider.name] = self

    def stop(self) -> None:
        self._stop.set()
        with _REGISTRY_LOCK:
            if RECEIVERS.get(self.provider.name) is self:
                del RECEIVERS[self.provider.name]

    @property
    def running(self) -> bool:
        return not self._stop.is_set()

    def submit(self, messages: list[RawMessage]) -> Future[bool]:
        """Queue one POST's events; the future is done once they are stored (or fails if the receiver stops)."""
        fut: Future[bool] = Future()
        if self._stop.is_set():
            fut.set_exception(ReceiverStopped("the receiver is stopping"))
            return fut
        self.counters["posts"] += 1
        self._inbox.put((messages, fut))
        return fut

    def quarantine(self, items: Sequence[QuarantineItem]) -> None:
        """Keep refused input for inspection (raises the store's error if it cannot)."""
        if self._store is None:
            raise ReceiverStopped("no store bound to the receiver")
        self._store.write_records([], quarantine=list(items))
        self.counters["quarantined"] += len(items)

    def batches(self) -> Iterator[Batch]:
        limit = self.cfg.batch_size
        try:
            while not self._stop.is_set():
                try:
                    first = self._inbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                messages, waiters = list(first[0]), [first[1]]
                while len(messages) < limit:
                    try:
                        more, fut = self._inbox.get_nowait()
                    except queue.Empty:
                        break
                    messages += more
                    waiters.append(fut)
                self._seq += 1
                self.counters["received"] += len(messages)
                yield Batch(tuple(messages), self._seq, waiters)
        finally:
            self._fail_waiting()

    def ack(self, batch: Batch) -> None:
        self.counters["acked"] += len(batch)
        for fut in batch.token or ():
            if not fut.done():
                fut.set_result(True)

    def _fail_waiting(self) -> None:
        while True:
            try:
                _, fut = self._inbox.get_nowait()
            except queue.Empty:
                return
            if not fut.done():
                fut.set_exception(ReceiverStopped("the receiver stopped before storing"))

    def stats(self) -> dict[str, Any]:
        return dict(self.counters)
