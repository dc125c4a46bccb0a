"""Retention: events older than a provider's `retention_days` are purged in bounded batches, periodically.

Runs as one daemon thread in `stackwatch serve`; each pass deletes in short transactions so the catcher and
the API never wait behind a long delete.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from stackwatch.config.settings import Settings
from stackwatch.store.errors import StoreError
from stackwatch.store.events import EventStore

log = logging.getLogger(__name__)


def purge_once(settings: Settings, store: EventStore, batch_size: int = 5000) -> dict[str, int]:
    """One pass over the providers that set `retention_days`; returns events purged per provider."""
    purged: dict[str, int] = {}
    now = datetime.now(UTC)
    for provider in settings.providers:
        days = provider.events.retention_days
        if days is None:
            continue
        cutoff = now - timedelta(days=days)
        purged[provider.name] = store.purge(cutoff, batch_size=batch_size, provider=provider.name)
        if purged[provider.name]:
            log.info("retention purge", extra={"provider": provider.name, "purged": purged[provider.name],
                                               "cutoff": cutoff.isoformat()})
    return purged


class RetentionWorker:
    def __init__(self, settings: Settings, store: EventStore, interval_seconds: float = 3600.0) -> None:
        self.settings = settings
        self.store = store
        self.interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def start(self) -> RetentionWorker:
        if any(p.events.retention_days for p in self.settings.providers):
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                purge_once(self.settings, self.store)
            except StoreError as exc:
                log.warning("retention purge failed, will retry", extra={"error": str(exc)})
            self._stop.wait(self.interval)
