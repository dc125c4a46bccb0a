"""The null monitor: no events for this provider (it still gets inventory)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from stackwatch.events.monitors.base import Availability, Batch, Monitor

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import ProviderConfig


class NullMonitor(Monitor):
    name = "null"
    priority = 0

    def __init__(self, provider: ProviderConfig) -> None:
        super().__init__(provider)
        self._stopped = threading.Event()

    @classmethod
    def available(cls, provider: ProviderConfig) -> Availability:
        return Availability(True, "always available; catches no events")

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self._stopped.set()

    def batches(self) -> Iterator[Batch]:
        self._stopped.wait()
        return iter(())

    def ack(self, batch: Batch) -> None:
        pass
