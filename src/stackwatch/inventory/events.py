"""Events -> inventory: the refresher the switchboard's refresh handler calls with coalesced targets.

The switchboard speaks in routing-table target kinds (``vm``, ``host``, ``floating_ip`` ...); the inventory in
its kinds table (``servers``, ``hypervisors`` ...). This module translates one into the other and runs a
targeted refresh (only the objects named) or a full one, so the switchboard never imports openstacksdk.

One openstacksdk connection per provider is kept and reused: authenticating costs a token request, and an
event burst must not pay it per refresh. A refresh failing on authentication (token revoked, password
rotated) drops the connection and retries once on a fresh one. A lock per provider serialises refreshes of
one provider: the connection and the call counter wrapped around its session are not shared across threads
(the first full refresh runs in its own thread while events already arrive).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import Engine

from stackwatch.config.settings import ProviderConfig, Settings
from stackwatch.inventory import refresh as engine_refresh
from stackwatch.inventory.connect import connect
from stackwatch.inventory.kinds import Kind, kind_named
from stackwatch.switchboard.targets import Target

log = logging.getLogger(__name__)

#: Kinds whose objects an event names by something that is not the inventory uid: a ``host`` target is a
#: host name while hypervisors are keyed by id; an ``aggregate`` target is often the uuid while aggregates
#: are keyed by their integer id. Fetching those by the event's ref would key a second row for the same
#: object, so they are listed whole (they are few: hosts and aggregates, not servers).
LISTED_WHOLE: frozenset[str] = frozenset({"hypervisors", "aggregates", "availability_zones"})

Connector = Callable[[ProviderConfig], Any]


def inventory_kind(target_kind: str) -> Kind | None:
    """The inventory kind of a routing-table target kind (``vm`` -> servers); None when it keeps none."""
    try:
        return kind_named(target_kind)
    except KeyError:
        return None


def plan(targets: Iterable[Target]) -> tuple[list[tuple[Kind, str]], list[str]]:
    """(inventory targets to fetch, target kinds skipped because the inventory does not keep them).

    A target without an id, or of a kind in ``LISTED_WHOLE``, becomes one whole-kind listing (a Kind copy
    without a ``get`` call, so ``targeted_refresh`` lists it completely); its id targets are then redundant.
    """
    whole: dict[str, Kind] = {}
    by_id: dict[str, tuple[Kind, set[str]]] = {}
    skipped: set[str] = set()
    for target in targets:
        kind = inventory_kind(target.kind)
        if kind is None:
            skipped.add(target.kind)
            continue
        if target.id is None or kind.name in LISTED_WHOLE or kind.get is None:
            whole[kind.name] = dataclasses.replace(kind, get=None)
        else:
            by_id.setdefault(kind.name, (kind, set()))[1].add(target.id)
    out: list[tuple[Kind, str]] = []
    for name, listed in sorted(whole.items()):
        out.append((listed, ""))  # the uid is unused when the kind is listed whole
        by_id.pop(name, None)
    for _name, (kind, uids) in sorted(by_id.items()):
        out.extend((kind, uid) for uid in sorted(uids))
    return out, sorted(skipped)


def _is_auth_failure(exc: BaseException) -> bool:
    from keystoneauth1 import exceptions as ks_exc
    from openstack import exceptions as os_exc

    if isinstance(exc, ks_exc.Unauthorized | ks_exc.AuthorizationFailure):
        return True
    return isinstance(exc, os_exc.HttpException) and getattr(exc, "status_code", None) == 401


class InventoryRefresher:
    """``Refresher`` for the switchboard: ``(provider, targets, full) -> None``; ``close()`` drops connections.

    ``last`` keeps each provider's latest ``RefreshResult`` (tests and status pages read it; no secrets).
    """

    def __init__(self, settings: Settings, engine: Engine, connector: Connector = connect) -> None:
        self.settings = settings
        self.engine = engine
        self.connector = connector
        self._conns: dict[str, Any] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self.last: dict[str, engine_refresh.RefreshResult] = {}

    def _lock(self, provider: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(provider, threading.Lock())

    def _conn(self, provider: str) -> Any:
        conn = self._conns.get(provider)
        if conn is None:
            conn = self._conns[provider] = self.connector(self.settings.provider(provider))
        return conn

    def _drop(self, provider: str) -> None:
        conn = self._conns.pop(provider, None)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a connection that cannot close cleanly is dropped anyway
                log.debug("inventory %s: closing the old connection failed", provider, exc_info=True)

    def __call__(self, provider: str, targets: frozenset[Target], full: bool) -> None:
        fetch: list[tuple[Kind, str]] = []
        if not full:
            fetch, skipped = plan(targets)
            if skipped:
                log.info(
                    "inventory %s: target kinds the inventory does not keep, skipped: %s",
                    provider,
                    ", ".join(skipped),
                    extra={"provider": provider, "skipped_kinds": skipped},
                )
            if not fetch:
                return
        with self._lock(provider):
            for attempt in (1, 2):
                conn = self._conn(provider)
                try:
                    if full:
                        result = engine_refresh.full_refresh(self.engine, provider, conn)
                    else:
                        result = engine_refresh.targeted_refresh(self.engine, provider, conn, fetch)
                    break
                except Exception as exc:
                    if attempt == 1 and _is_auth_failure(exc):
                        log.warning(
                            "inventory %s: authentication failed (%s); reconnecting", provider, exc.__class__.__name__
                        )
                        self._drop(provider)
                        continue
                    raise
        self.last[provider] = result
        log.info(
            "inventory refresh",
            extra={
                "provider": provider,
                "mode": result.mode,
                "refresh_id": result.refresh_id,
                "targets": len(targets),
                "objects": len(fetch),
                "api_calls": result.api_calls,
                "seconds": result.seconds,
                "changes": result.changes,
                "skipped": result.notes or None,
            },
        )

    def close(self) -> None:
        for provider in list(self._conns):
            self._drop(provider)


def make_refresher(settings: Settings, engine: Engine, connector: Connector = connect) -> InventoryRefresher:
    """The switchboard refresher for ``settings``' providers writing to ``engine`` (see ``InventoryRefresher``)."""
    return InventoryRefresher(settings, engine, connector)
