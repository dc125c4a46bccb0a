"""The periodic full refresh: repairs whatever events missed (a notification never sent, a bus outage).

Each provider with a cloud is refreshed in full when this process starts handling its refresh partition, then
every `interval` seconds; a failed full refresh is retried with back-off, not an hour later. Only the process
that holds the provider's refresh lease runs it (`holds`), so two handler processes do not both list a cloud.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from stackwatch.backoff import Backoff
from stackwatch.switchboard.refresh import Refresher

log = logging.getLogger(__name__)


class PeriodicFullRefresh:
    def __init__(
        self,
        refresher: Refresher,
        providers: Sequence[str],
        interval: float,
        holds: Callable[[str], bool],
        backoff: Backoff | None = None,
        tick: float = 1.0,
    ) -> None:
        self.refresher = refresher
        self.providers = list(providers)
        self.interval = interval
        self.holds = holds
        self.backoff = backoff or Backoff(2.0, 300.0)
        self.tick = tick
        self._due: dict[str, float] = dict.fromkeys(self.providers, 0.0)  # 0: at once
        self._failures: dict[str, int] = dict.fromkeys(self.providers, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="full-refresh", daemon=True)

    def start(self) -> PeriodicFullRefresh:
        if self.providers:
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            for provider in self.providers:
                if self._stop.is_set():
                    return
                if time.monotonic() >= self._due[provider] and self.holds(provider):
                    self._refresh(provider)
            self._stop.wait(self.tick)

    def _refresh(self, provider: str) -> None:
        try:
            self.refresher(provider, frozenset(), True)
        except Exception as exc:  # noqa: BLE001 - retried after a back-off; events keep refreshing targets
            self._failures[provider] += 1
            delay = self.backoff.delay(self._failures[provider])
            self._due[provider] = time.monotonic() + delay
            log.warning("full refresh failed; retrying", exc_info=self._failures[provider] == 1,
                        extra={"provider": provider, "attempt": self._failures[provider],
                               "retry_in_seconds": round(delay, 1), "error": f"{type(exc).__name__}: {exc}"})
            return
        self._failures[provider] = 0
        self._due[provider] = time.monotonic() + self.interval if self.interval > 0 else float("inf")
