"""Full refresh: list every kind through openstacksdk, upsert, mark what disappeared as deleted, record changes.

``apply_listing`` is the one place rows change; a targeted refresh feeds it partial listings
(``complete=False``) plus the uids the API answered 404 for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from stackwatch import selfmetrics
from stackwatch.inventory.kinds import KINDS, Kind, kind_named
from stackwatch.inventory.models import InventoryChangeRow, InventoryItemRow, InventoryRefreshRow

log = logging.getLogger(__name__)


@dataclass
class KindResult:
    kind: str
    listed: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    restored: int = 0
    skipped: str | None = None


@dataclass
class RefreshResult:
    refresh_id: int
    provider: str
    mode: str
    api_calls: int
    seconds: float
    kinds: dict[str, KindResult] = field(default_factory=dict)

    @property
    def notes(self) -> dict[str, str]:
        return {k: r.skipped for k, r in self.kinds.items() if r.skipped}

    @property
    def changes(self) -> int:
        return sum(r.created + r.updated + r.deleted + r.restored for r in self.kinds.values())


class CallCounter:
    """Counts HTTP requests made through a connection's keystoneauth session (token requests included)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.calls = 0

    def __enter__(self) -> CallCounter:
        session = self.conn.session
        original = session.request

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(*args, **kwargs)

        self._original = original
        session.request = counting
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.session.request = self._original


def plain(value: Any) -> Any:
    """JSON-safe copy of an SDK value (resources become dicts without the client-side ``location``)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "to_dict") and callable(value.to_dict):
        d = value.to_dict(computed=False)
        d.pop("location", None)
        return plain(d)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [plain(v) for v in value]
    return str(value)


def read_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if obj is None:
            return None
        if isinstance(obj, Mapping):
            obj = obj.get(part)
        else:
            try:
                obj = getattr(obj, part, None)
            except Exception:  # noqa: BLE001 - an SDK attribute that cannot be computed is just absent
                return None
    return plain(obj)


def extract(kind: Kind, resource: Any, ctx: Mapping[str, Any]) -> dict[str, Any]:
    data = {name: read_path(resource, path) for name, path in kind.fields.items()}
    if kind.derive:
        kind.derive(data, ctx)
    return data


def _columns(kind: Kind, data: Mapping[str, Any]) -> dict[str, Any]:
    def col(key: str | None) -> str | None:
        v = data.get(key) if key else None
        return None if v is None else str(v)[:255]

    return {"name": col("name"), "status": col(kind.status), "project_id": col(kind.project), "host": col(kind.host)}


def apply_listing(
    session: Session,
    provider: str,
    kind: Kind,
    items: Mapping[str, dict[str, Any]],
    now: datetime,
    refresh_id: int | None,
    complete: bool = True,
    gone: Iterable[str] = (),
) -> KindResult:
    """Upsert ``items`` (uid -> kept fields). With ``complete`` every live row not listed is deleted;
    otherwise only the uids in ``gone`` are."""
    res = KindResult(kind.name, listed=len(items))
    q = select(InventoryItemRow).where(InventoryItemRow.provider == provider, InventoryItemRow.kind == kind.name)
    if not complete:
        q = q.where(InventoryItemRow.uid.in_(list(items) + list(gone)))
    existing = {row.uid: row for row in session.scalars(q)}

    def change(uid: str, action: str, changes: dict | None) -> None:
        session.add(
            InventoryChangeRow(
                provider=provider,
                kind=kind.name,
                uid=uid,
                action=action,
                changes=changes,
                at=now,
                refresh_id=refresh_id,
            )
        )

    for uid, data in items.items():
        row = existing.get(uid)
        if row is None:
            session.add(
                InventoryItemRow(
                    provider=provider,
                    kind=kind.name,
                    uid=uid,
                    data=data,
                    first_seen=now,
                    last_seen=now,
                    changed_at=now,
                    **_columns(kind, data),
                )
            )
            change(uid, "created", data)
            res.created += 1
            continue
        row.last_seen = now
        diff = {k: [row.data.get(k), v] for k, v in data.items() if row.data.get(k) != v}
        diff.update({k: [v, None] for k, v in row.data.items() if k not in data})
        if row.deleted_at is not None:
            row.deleted_at = None
            row.changed_at = now
            change(uid, "restored", diff or None)
            res.restored += 1
        elif diff:
            change(uid, "updated", diff)
            res.updated += 1
        if diff:
            row.data = data
            row.changed_at = now
            for k, v in _columns(kind, data).items():
                setattr(row, k, v)
    to_delete = set(gone)
    if complete:
        to_delete |= {uid for uid in existing if uid not in items}
    for uid in to_delete:
        row = existing.get(uid)
        if row is not None and row.deleted_at is None and uid not in items:
            row.deleted_at = now
            row.changed_at = now
            change(uid, "deleted", None)
            res.deleted += 1
    return res


def list_kind(conn: Any, kind: Kind) -> list[Any]:
    proxy = getattr(conn, kind.proxy)
    params = dict(kind.params)
    if kind.page_size:
        params["limit"] = kind.page_size
    return list(getattr(proxy, kind.method)(**params))


def full_refresh(engine: Engine, provider: str, conn: Any, kinds: Iterable[Kind] = KINDS) -> RefreshResult:
    """List every kind the cloud has, apply each listing, record the run. Credentials are never logged."""
    kinds = list(kinds)
    t0 = time.monotonic()
    started = datetime.now(UTC)
    with Session(engine) as session:
        run = InventoryRefreshRow(provider=provider, mode="full", started_at=started, api_calls=0)
        session.add(run)
        session.commit()
        refresh_id = run.id
    result = RefreshResult(refresh_id, provider, "full", 0, 0.0)
    ctx: dict[str, Any] = {}
    with CallCounter(conn) as counter:
        for kind in kinds:
            if not conn.has_service(kind.service):
                result.kinds[kind.name] = KindResult(kind.name, skipped=f"no {kind.service!r} service in the catalog")
                continue
            try:
                resources = list_kind(conn, kind)
            except Exception as exc:  # noqa: BLE001 - one failing kind must not stop the others
                reason = f"listing failed: {exc.__class__.__name__}: {str(exc)[:300]}"
                log.warning("inventory %s/%s: %s", provider, kind.name, reason)
                result.kinds[kind.name] = KindResult(kind.name, skipped=reason)
                continue
            items = {}
            for r in resources:
                data = extract(kind, r, ctx)
                uid = data.get(kind.uid)
                if uid:
                    items[str(uid)] = data
            if kind.name == "flavors":
                ctx["flavor_ids"] = {d["name"]: d["id"] for d in items.values()}
            now = datetime.now(UTC)
            with Session(engine) as session, session.begin():
                result.kinds[kind.name] = apply_listing(session, provider, kind, items, now, refresh_id)
    return _finish_run(engine, refresh_id, result, counter.calls, t0)


def _finish_run(engine: Engine, refresh_id: int, result: RefreshResult, calls: int, t0: float) -> RefreshResult:
    """Record a refresh run's end: API calls, per-kind counts, notes (the same for full and targeted)."""
    result.api_calls = calls
    result.seconds = round(time.monotonic() - t0, 3)
    with Session(engine) as session, session.begin():
        run = session.get(InventoryRefreshRow, refresh_id)
        run.finished_at = datetime.now(UTC)
        run.api_calls = result.api_calls
        run.counts = {
            k: {"listed": r.listed, "created": r.created, "updated": r.updated, "deleted": r.deleted,
                "restored": r.restored}
            for k, r in result.kinds.items()
            if not r.skipped
        }
        run.notes = result.notes or None
    selfmetrics.record_refresh(result.provider, result.mode, result.api_calls, result.seconds)
    return result


def parse_target(text: str) -> tuple[Kind, str]:
    """``vm:UUID``, ``image:UUID``, ``network:UUID`` ... (kind name or alias, then the uid)."""
    name, sep, uid = text.partition(":")
    if not sep or not uid:
        raise ValueError(f"target {text!r} is not KIND:ID (e.g. vm:0b6e...)")
    return kind_named(name), uid


def _flavor_ids(session: Session, provider: str) -> dict[str, str]:
    q = select(InventoryItemRow).where(
        InventoryItemRow.provider == provider, InventoryItemRow.kind == "flavors", InventoryItemRow.deleted_at.is_(None)
    )
    return {r.name: r.uid for r in session.scalars(q) if r.name}


def targeted_refresh(engine: Engine, provider: str, conn: Any, targets: Iterable[tuple[Kind, str]]) -> RefreshResult:
    """Fetch only the given objects (a 404 marks one deleted); a kind without a get call is listed whole."""
    from openstack import exceptions as os_exc

    by_kind: dict[str, tuple[Kind, set[str]]] = {}
    for kind, uid in targets:
        by_kind.setdefault(kind.name, (kind, set()))[1].add(uid)
    t0 = time.monotonic()
    with Session(engine) as session:
        run = InventoryRefreshRow(provider=provider, mode="targeted", started_at=datetime.now(UTC), api_calls=0)
        session.add(run)
        session.commit()
        refresh_id = run.id
        ctx: dict[str, Any] = {"flavor_ids": _flavor_ids(session, provider)}
    result = RefreshResult(refresh_id, provider, "targeted", 0, 0.0)
    with CallCounter(conn) as counter:
        for kind, uids in by_kind.values():
            if not conn.has_service(kind.service):
                result.kinds[kind.name] = KindResult(kind.name, skipped=f"no {kind.service!r} service in the catalog")
                continue
            complete = kind.get is None
            items: dict[str, dict[str, Any]] = {}
            gone: list[str] = []
            if complete:
                for r in list_kind(conn, kind):
                    data = extract(kind, r, ctx)
                    if data.get(kind.uid):
                        items[str(data[kind.uid])] = data
            else:
                getter = getattr(getattr(conn, kind.proxy), kind.get)
                for uid in sorted(uids):
                    try:
                        items[uid] = extract(kind, getter(uid), ctx)
                    except os_exc.NotFoundException:
                        gone.append(uid)
            with Session(engine) as session, session.begin():
                result.kinds[kind.name] = apply_listing(
                    session, provider, kind, items, datetime.now(UTC), refresh_id, complete=complete, gone=gone
                )
    return _finish_run(engine, refresh_id, result, counter.calls, t0)
