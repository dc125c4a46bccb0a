"""The persisted outbox: what automation rules and push subscriptions must deliver, until it is delivered.

A handler enqueues deliveries (`enqueue`, in its own transaction if it likes) after it decided on a batch of
events; the dispatcher (push/dispatcher.py) claims the due ones and sends them. What this guarantees:

- **Once per key.** A delivery is unique per (source, owner, action_index, message_id): replaying a batch
  after a crash enqueues nothing twice, and a delivery that is `done` is never sent again. Delivery is
  at-least-once: a process killed between the peer's answer and the commit of `done` sends again, with the
  same idempotency key (the receiver de-duplicates on it).
- **Order per lane.** Deliveries of one (source, owner, lane) go out in id order: a later one waits while an
  earlier one is pending (push: lane = vm_ref, so a VM's events arrive in order; rules: lane = message_id,
  so one event's actions run in order and its retries hold back no other event).
- **Retries.** `retry` verdicts wait a jittered, doubling delay (`stackwatch.backoff.Backoff`, first retry
  within about a second, capped at 5 minutes; or the peer's Retry-After) until `max_attempts`, then the
  delivery is `dead` (the dead-letter list); `final` verdicts are dead at once. `retry()` re-queues dead ones.
- **Audit.** Every attempt is a row in `delivery_attempts` (number, time, duration, status code or error).
- **Two processes.** A claim leases rows with a conditional UPDATE (`lease_owner`, `lease_until`) that only
  one process can win, on SQLite and PostgreSQL alike; a lease held by a dead process of this host is freed
  at once (`free_dead_leases`), others when they run out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from stackwatch.backoff import Backoff
from stackwatch.push.outcome import Outcome
from stackwatch.store.deliveries import SOURCES, DeliveryAttemptRow, DeliveryRow
from stackwatch.store.stream import dead_local_owner, default_owner

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 10
#: first retry within about a second (jitter: 0.5-1 s), doubling, capped at 5 minutes
RETRY_BACKOFF = Backoff(minimum=1.0, maximum=300.0)
_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """Something to deliver once per (source, owner, action_index, message_id)."""

    source: str  # "rule" | "subscription"
    owner: str  # the rule's or the subscription's name
    action_index: int
    message_id: str
    lane: str
    kind: str  # which sender: webhook, refresh, fleece, log, ...
    spec: Mapping[str, Any]  # the sender's parameters (never a secret: name the variable that holds it)
    body: bytes | None = None
    target: str | None = None  # masked, for listings
    provider: str | None = None
    event_id: int | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"delivery source must be one of {SOURCES}, not {self.source!r}")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")


@dataclass(frozen=True, slots=True)
class Delivery:
    """A stored delivery, as claimed or listed."""

    id: int
    source: str
    owner: str
    action_index: int
    message_id: str
    provider: str | None
    event_id: int | None
    lane: str
    kind: str
    target: str | None
    spec: Mapping[str, Any]
    body: bytes | None
    state: str
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime
    last_status: int | None
    last_error: str | None

    @property
    def owner_key(self) -> tuple[str, str]:
        return (self.source, self.owner)


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: int
    attempt: int
    started_at: datetime
    duration_ms: float
    verdict: str
    status: int | None
    error: str | None
    worker: str | None


@dataclass
class ClaimBudget:
    """How much a claim may take: `limit` rows, at most `owner_room(key)` for each (source, owner) and
    `kind_room[kind]` for each kind that has a cap (fleece: a few at once)."""

    limit: int
    owner_room: Callable[[tuple[str, str]], int] = lambda _key: 1 << 30
    kind_room: dict[str, int] = field(default_factory=dict)


_COLUMNS = [c for c in DeliveryRow.__table__.columns]


_FIELDS = tuple(Delivery.__dataclass_fields__)


def _delivery(row: Any) -> Delivery:
    m = row._mapping
    return Delivery(**{name: m[name] for name in _FIELDS})


class Outbox:
    """The deliveries table, seen by one process (`owner` is this process in leases and attempts)."""

    def __init__(self, engine: Engine, *, owner: str | None = None, backoff: Backoff = RETRY_BACKOFF,
                 lease_seconds: float = 60.0) -> None:
        self.engine = engine
        self.owner = owner or default_owner()
        self.backoff = backoff
        self.lease = timedelta(seconds=lease_seconds)
        self._insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(DeliveryRow)

    # -- enqueue ------------------------------------------------------------------------------------------

    def enqueue(self, items: Iterable[NewDelivery], conn: Connection | None = None) -> int:
        """Store the deliveries not stored yet (by key); returns how many were new. With `conn`, inside the
        caller's transaction (so a handler's decisions and its deliveries commit together)."""
        now = datetime.now(UTC)
        rows = [{
            "source": d.source, "owner": d.owner, "action_index": d.action_index, "message_id": d.message_id,
            "provider": d.provider, "event_id": d.event_id, "lane": d.lane, "kind": d.kind, "target": d.target,
            "spec": dict(d.spec), "body": d.body, "state": "pending", "attempts": 0,
            "max_attempts": d.max_attempts, "next_attempt_at": now, "created_at": now, "updated_at": now,
        } for d in items]
        if not rows:
            return 0
        stmt = self._insert.on_conflict_do_nothing(
            index_elements=["source", "owner", "action_index", "message_id"]).returning(DeliveryRow.id)
        if conn is not None:
            return len(conn.execute(stmt, rows).all())
        with self.engine.begin() as own:
            return len(own.execute(stmt, rows).all())

    # -- claim and complete -------------------------------------------------------------------------------

    def claim(self, budget: ClaimBudget, *, sources: Sequence[str] = SOURCES,
              exclude_owners: Iterable[tuple[str, str]] = ()) -> list[Delivery]:
        """Lease and return due deliveries within `budget`: pending, due, not leased, first of their lane,
        the earliest due first, spread over owners (a window of at most a few rows per owner is read, so one
        owner's backlog cannot fill the claim)."""
        if budget.limit <= 0:
            return []
        now = datetime.now(UTC)
        d = DeliveryRow
        earlier = aliased(DeliveryRow)
        excluded = set(exclude_owners)
        rank = func.row_number().over(partition_by=(d.source, d.owner), order_by=(d.next_attempt_at, d.id))
        due = (
            select(d.id, d.source, d.owner, d.kind, d.next_attempt_at, rank.label("rank"))
            .where(d.state == "pending", d.next_attempt_at <= now, d.source.in_(sources),
                   (d.lease_until.is_(None)) | (d.lease_until < now),
                   ~exists().where(earlier.source == d.source, earlier.owner == d.owner, earlier.lane == d.lane,
                                   earlier.state == "pending", earlier.id < d.id))
            .subquery()
        )
        per_owner = max(1, min(budget.limit, 8))
        query = (select(due.c.id, due.c.source, due.c.owner, due.c.kind).where(due.c.rank <= per_owner)
                 .order_by(due.c.next_attempt_at, due.c.id).limit(budget.limit * 4))
        with self.engine.connect() as conn:
            candidates = conn.execute(query).all()
        chosen: list[int] = []
        taken: dict[tuple[str, str], int] = {}
        kinds = dict(budget.kind_room)
        for cid, source, owner, kind in candidates:
            key = (source, owner)
            if key in excluded or taken.get(key, 0) >= budget.owner_room(key):
                continue
            if kind in kinds:
                if kinds[kind] <= 0:
                    continue
                kinds[kind] -= 1
            taken[key] = taken.get(key, 0) + 1
            chosen.append(cid)
            if len(chosen) >= budget.limit:
                break
        if not chosen:
            return []
        with self.engine.begin() as conn:
            # the same conditions again: of two processes that read the same candidates, one wins each row
            won = conn.execute(
                update(d).where(d.id.in_(chosen), d.state == "pending",
                                (d.lease_until.is_(None)) | (d.lease_until < now))
                .values(lease_owner=self.owner, lease_until=now + self.lease)
                .returning(*_COLUMNS)
            ).all()
        return sorted((_delivery(r) for r in won), key=lambda x: x.id)

    def renew(self, ids: Iterable[int]) -> None:
        """Extend the leases of deliveries this process is still sending (a long fleece)."""
        ids = list(ids)
        if ids:
            with self.engine.begin() as conn:
                conn.execute(update(DeliveryRow)
                             .where(DeliveryRow.id.in_(ids), DeliveryRow.lease_owner == self.owner)
                             .values(lease_until=datetime.now(UTC) + self.lease))

    def complete(self, delivery: Delivery, outcome: Outcome, started_at: datetime) -> str:
        """Record the attempt and move the delivery on by `outcome`; returns its new state."""
        attempt = delivery.attempts + 1
        now = datetime.now(UTC)
        if outcome.ok:
            state, next_at = "done", now
        elif outcome.verdict == "final" or attempt >= delivery.max_attempts:
            state, next_at = "dead", now
        else:
            wait = max(self.backoff.delay(attempt), outcome.retry_after or 0.0)
            state, next_at = "pending", now + timedelta(seconds=wait)
        error = outcome.error[:_ERROR_CHARS] if outcome.error else None
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery.id, DeliveryRow.lease_owner == self.owner,
                       DeliveryRow.state == "pending")
                .values(state=state, attempts=attempt, next_attempt_at=next_at, last_status=outcome.status,
                        last_error=error, lease_owner=None, lease_until=None, updated_at=now)
            ).rowcount
            conn.execute(DeliveryAttemptRow.__table__.insert().values(
                delivery_id=delivery.id, attempt=attempt, started_at=started_at,
                duration_ms=round(outcome.duration * 1000, 3), verdict=outcome.verdict, status=outcome.status,
                error=error, worker=self.owner))
        if not moved:
            log.warning("delivery lease lost before its outcome was saved; another process may send it again",
                        extra={"delivery": delivery.id, "owner": delivery.owner, "verdict": outcome.verdict})
            return delivery.state
        if state == "dead":
            log.warning("delivery dead-lettered", extra={
                "delivery": delivery.id, "source": delivery.source, "owner": delivery.owner,
                "message_id": delivery.message_id, "kind": delivery.kind, "attempts": attempt,
                "status": outcome.status, "error": error})
        return state

    def free_dead_leases(self) -> int:
        """Free the leases of processes of this host that no longer run (kill -9): their deliveries are due
        again now instead of when the lease runs out."""
        with self.engine.connect() as conn:
            owners = conn.execute(select(DeliveryRow.lease_owner).distinct().where(
                DeliveryRow.state == "pending", DeliveryRow.lease_owner.is_not(None))).scalars().all()
        dead = [o for o in owners if o != self.owner and dead_local_owner(o)]
        if not dead:
            return 0
        with self.engine.begin() as conn:
            freed = conn.execute(update(DeliveryRow).where(DeliveryRow.lease_owner.in_(dead),
                                                           DeliveryRow.state == "pending")
                                 .values(lease_owner=None, lease_until=None)).rowcount
        log.info("freed deliveries leased by dead processes", extra={"owners": dead, "deliveries": freed})
        return freed

    # -- operators ----------------------------------------------------------------------------------------

    def retry(self, *, ids: Sequence[int] | None = None, source: str | None = None, owner: str | None = None,
              extra_attempts: int = DEFAULT_MAX_ATTEMPTS) -> int:
        """Re-queue dead deliveries (all, or those of `ids` / `source` / `owner`) with `extra_attempts` more
        attempts each, due now; returns how many. Attempt numbers go on from where they were."""
        conditions = [DeliveryRow.state == "dead"]
        if ids is not None:
            conditions.append(DeliveryRow.id.in_(list(ids)))
        if source is not None:
            conditions.append(DeliveryRow.source == source)
        if owner is not None:
            conditions.append(DeliveryRow.owner == owner)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            return conn.execute(update(DeliveryRow).where(and_(*conditions)).values(
                state="pending", next_attempt_at=now, updated_at=now, lease_owner=None, lease_until=None,
                max_attempts=DeliveryRow.attempts + max(1, extra_attempts))).rowcount

    def list(self, *, source: str | None = None, owner: str | None = None, state: str | None = None,
             message_id: str | None = None, ids: Sequence[int] | None = None, limit: int = 100,
             newest_first: bool = True) -> list[Delivery]:
        query = select(*_COLUMNS)
        for column, value in ((DeliveryRow.source, source), (DeliveryRow.owner, owner),
                              (DeliveryRow.state, state), (DeliveryRow.message_id, message_id)):
            if value is not None:
                query = query.where(column == value)
        if ids is not None:
            query = query.where(DeliveryRow.id.in_(list(ids)))
        query = query.order_by(DeliveryRow.id.desc() if newest_first else DeliveryRow.id).limit(limit)
        with self.engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(query)]

    def attempts(self, delivery_ids: Iterable[int]) -> dict[int, list[Attempt]]:
        """Every recorded attempt of each delivery, in order."""
        ids = list(delivery_ids)
        if not ids:
            return {}
        a = DeliveryAttemptRow
        out: dict[int, list[Attempt]] = {i: [] for i in ids}
        with self.engine.connect() as conn:
            for r in conn.execute(select(a.delivery_id, a.attempt, a.started_at, a.duration_ms, a.verdict, a.status,
                                         a.error, a.worker).where(a.delivery_id.in_(ids)).order_by(a.id)):
                out[r.delivery_id].append(Attempt(*r))
        return out

    def counts(self, source: str | None = None) -> dict[tuple[str, str], dict[str, int]]:
        """{(source, owner): {state: n}}: each owner's backlog, done and dead-letter sizes."""
        query = select(DeliveryRow.source, DeliveryRow.owner, DeliveryRow.state, func.count()).group_by(
            DeliveryRow.source, DeliveryRow.owner, DeliveryRow.state)
        if source is not None:
            query = query.where(DeliveryRow.source == source)
        out: dict[tuple[str, str], dict[str, int]] = {}
        with self.engine.connect() as conn:
            for src, owner, state, n in conn.execute(query):
                out.setdefault((src, owner), {})[state] = n
        return out
