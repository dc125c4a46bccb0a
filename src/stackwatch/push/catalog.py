"""The subscriptions a process delivers for, re-read from the store every `reload_seconds`.

The push handler asks it which subscriptions an event may go to, and the senders ask it for a delivery's
subscription (its destination and secret are read at send time, so a removed subscription's deliveries stop).
Reading the table costs one query per period whatever the event rate, and a subscription added with the CLI
while `serve` runs is in effect within `reload_seconds`.
"""

from __future__ import annotations

import logging
import threading
import time

from stackwatch.push.subscriptions import Subscription, SubscriptionStore

log = logging.getLogger(__name__)


class SubscriptionCatalog:
    def __init__(self, store: SubscriptionStore, reload_seconds: float = 2.0) -> None:
        self.store = store
        self.reload_seconds = reload_seconds
        self._lock = threading.Lock()
        self._by_name: dict[str, Subscription] = {}
        self._by_provider: dict[str, tuple[Subscription, ...]] = {}
        self._loaded_at = float("-inf")
        self._forced_at = float("-inf")

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._loaded_at < self.reload_seconds:
            return
        with self._lock:
            if not force and now - self._loaded_at < self.reload_seconds:
                return
            try:
                subs = self.store.list()
            except Exception:  # noqa: BLE001 - keep the last known set while the database is away
                if self._loaded_at == float("-inf"):
                    raise
                log.warning("could not re-read subscriptions; keeping the last known", exc_info=True)
                return
            by_provider: dict[str, list[Subscription]] = {}
            for sub in subs:
                by_provider.setdefault(sub.provider, []).append(sub)
            self._by_name = {s.name: s for s in subs}
            self._by_provider = {p: tuple(v) for p, v in by_provider.items()}
            self._loaded_at = time.monotonic()

    def for_provider(self, provider: str) -> tuple[Subscription, ...]:
        self._refresh()
        return self._by_provider.get(provider, ())

    def get(self, name: str) -> Subscription | None:
        """The subscription `name`; re-read at once when it is unknown (created since the last read)."""
        self._refresh()
        sub = self._by_name.get(name)
        if sub is None and time.monotonic() - self._forced_at > 0.5:  # removed ones do not re-read per delivery
            self._forced_at = time.monotonic()
            self._refresh(force=True)
            sub = self._by_name.get(name)
        return sub
