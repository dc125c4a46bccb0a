"""The refresh handler: events -> targets (routing table) -> coalesced, targeted inventory refreshes.

Targets of one provider arriving within `window` seconds are merged into one call of the refresher, so a
burst of 40 events about 3 servers costs 3 lookups, not 40. Past `full_threshold` distinct targets the
refresher is asked for a full refresh instead (cheaper than hundreds of single GETs).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from stackwatch.events.model import Event
from stackwatch.switchboard.routes import RoutingTable
from stackwatch.switchboard.targets import Target, targets_for

log = logging.getLogger(__name__)

#: refresher(provider, targets, full) -> None; the inventory implements it
Refresher = Callable[[str, frozenset[Target], bool], None]


class RefreshHandler:
    name = "refresh"

    def __init__(
        self, routes: RoutingTable, refresher: Refresher, window: float = 0.2, full_threshold: int = 200
    ) -> None:
        self.routes = routes
        self.refresher = refresher
        self.window = window
        self.full_threshold = full_threshold
        self._pending: dict[str, set[Target]] = {}
        self._first_seen: dict[str, float] = {}
        self._lock = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="refresh-coalescer", daemon=True)
        self._thread.start()

    def handle(self, events: Sequence[Event]) -> None:
        with self._lock:
            for event in events:
                targets = targets_for(event, self.routes)
                if targets:
                    self._pending.setdefault(event.provider, set()).update(targets)
                    self._first_seen.setdefault(event.provider, time.monotonic())
            self._lock.notify()

    def flush(self) -> None:
        """Run every pending refresh now (tests, shutdown)."""
        with self._lock:
            due = self._take(lambda _provider: True)
        self._refresh(due)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout=5)
        self.flush()

    def _take(self, ready: Callable[[str], bool]) -> list[tuple[str, set[Target]]]:
        due = [(p, t) for p, t in self._pending.items() if ready(p)]
        for provider, _targets in due:
            del self._pending[provider]
            del self._first_seen[provider]
        return due

    def _refresh(self, due: list[tuple[str, set[Target]]]) -> None:
        for provider, targets in due:
            full = len(targets) > self.full_threshold
            try:
                self.refresher(provider, frozenset(targets), full)
            except Exception:
                log.exception("refresh failed", extra={"provider": provider, "targets": len(targets)})

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                now = time.monotonic()
                wait = min(self._first_seen.values()) + self.window - now
                if wait > 0:
                    self._lock.wait(wait)
                    continue
                due = self._take(lambda p, now=now: self._first_seen[p] + self.window <= now)
            self._refresh(due)
