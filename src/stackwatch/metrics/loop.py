"""The capture loop of one provider: a cycle every `interval_seconds`, a jittered back-off while Gnocchi or
the database is away (the next successful cycle catches up from the cursors), retention once an hour."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from stackwatch.backoff import Backoff
from stackwatch.config.settings import ProviderConfig
from stackwatch.metrics.capture import Capture, CycleReport
from stackwatch.metrics.gnocchi import GnocchiError
from stackwatch.metrics.retention import purge
from stackwatch.store.errors import StoreError

log = logging.getLogger(__name__)
PURGE_EVERY = 3600.0


class MetricsLoop:
    def __init__(self, provider: ProviderConfig, engine: Engine, capture: Capture | None = None,
                 backoff: Backoff | None = None) -> None:
        if provider.metrics is None:
            raise ValueError(f"provider {provider.name} has no metrics section")
        self.provider = provider
        self.capture = capture or Capture(provider, engine)
        self.engine = engine
        self.interval = provider.metrics.interval_seconds
        self.backoff = backoff or Backoff(2.0, min(60.0, max(2.0, self.interval)))
        self.cycles = 0
        self.failures = 0
        self.last: CycleReport | None = None
        self.last_error: str | None = None
        self._purged_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"metrics-{provider.name}", daemon=True)

    def start(self) -> MetricsLoop:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.capture.close()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stats(self) -> dict[str, Any]:
        return {"cycles": self.cycles, "failures": self.failures, "last_error": self.last_error,
                "last": self.last.as_dict() if self.last else None}

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.last = self.capture.cycle(self._stop)
            except (GnocchiError, StoreError, SQLAlchemyError) as exc:
                failures += 1
                self.failures += 1
                self.last_error = str(exc)
                self.capture.close()  # a fresh session (and token) for the next try
                log.warning("metrics capture failed, will retry", extra={"provider": self.provider.name,
                                                                         "error": str(exc), "failures": failures})
                if self.backoff.wait(failures, self._stop):
                    return
                continue
            failures = 0
            self.cycles += 1
            log.info("metrics captured", extra=self.last.as_dict())
            self._maybe_purge()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def _maybe_purge(self) -> None:
        if time.monotonic() - self._purged_at < PURGE_EVERY and self._purged_at:
            return
        self._purged_at = time.monotonic()
        retention = self.provider.metrics.retention if self.provider.metrics else None
        if retention is None:
            return
        try:
            deleted = purge(self.engine, self.provider.name, retention)
        except (StoreError, SQLAlchemyError) as exc:
            log.warning("metrics retention failed", extra={"provider": self.provider.name, "error": str(exc)})
            return
        if any(deleted.values()):
            log.info("metrics retention", extra={"provider": self.provider.name, "deleted": deleted})


def start_loops(providers: list[ProviderConfig], engine: Engine) -> list[MetricsLoop]:
    """One running loop per provider that has a `metrics` section."""
    return [MetricsLoop(p, engine).start() for p in providers if p.metrics is not None]
