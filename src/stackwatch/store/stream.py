"""Reading the event stream in commit order, and the handlers' persisted positions in it.

Handlers (refresh, policy, later rules and push) read the stored stream from their own position, so they work
whichever process caught an event and resume after a crash. The hard part is the order: a reader that
remembers "the last id I saw" skips rows whenever ids commit out of order, and on PostgreSQL they do (two
store processes with two transactions each: the transaction that took id 7 may commit after the one that
took id 8). So a position is `(txid, id)`:

- PostgreSQL: each row carries the id of the transaction that inserted it (`txid xid8`, default
  `pg_current_xact_id()`, migration 0005). A reader only returns rows whose transaction is older than the
  oldest transaction still running in this database (the horizon, from `pg_current_snapshot()`), ordered by
  (txid, id): every transaction before it has ended, so no row can later appear behind a position passed.
  The index `ix_events_txid (txid, id)` serves the read.
- SQLite: one writer at a time, and a row's id is taken inside the write transaction that holds the lock
  until commit, so ids commit in order; txid is always 0 and the position is the id.

Positions live in `handler_positions`, one row per (handler, partition); the partition is the provider
today. A row is also a lease: a process owns a (handler, partition) until `lease_until`, renews it while it
works, and moves the position only while it owns it, so two processes running the same handler never both
handle an event; a crashed owner's lease runs out and another process (or the restarted one) takes over from
the last position saved. docs/architecture.md has the plan for sharing the stream between several processes.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, Engine, String, func, literal_column, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from stackwatch.events.model import Event
from stackwatch.store.models import Base, EventRow, UTCDateTime
from stackwatch.store.reads import EVENT_COLUMNS, event_from_row

log = logging.getLogger(__name__)

#: the id, then the columns `event_from_row` decodes
_ID_AND_EVENT = (EventRow.__table__.c.id, *(EventRow.__table__.c[name] for name in EVENT_COLUMNS))

#: the id part of a PostgreSQL head position: after every id of the transactions before the horizon
_AFTER_ALL_IDS = 2**62
#: The oldest transaction id (xid8) still running at this statement's snapshot that is not known to belong to
#: another database, else the snapshot's xmax. pg_stat_activity shows 32-bit xids: matched modulo 2**32.
#: Where it hides other users' sessions (no pg_read_all_stats), their transactions simply count as ours.
_HORIZON = text("""
WITH snap AS (SELECT pg_current_snapshot() AS s),
elsewhere AS (
    SELECT backend_xid::text::bigint AS xid32 FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()
)
SELECT least(
    (SELECT min(x::text::bigint) FROM snap, pg_snapshot_xip(snap.s) AS x
      WHERE x::text::bigint % 4294967296 NOT IN (SELECT xid32 FROM elsewhere)),
    (SELECT pg_snapshot_xmax(s)::text::bigint FROM snap))
""")


class HandlerPositionRow(Base):
    __tablename__ = "handler_positions"

    handler: Mapped[str] = mapped_column(String(64), primary_key=True)
    partition: Mapped[str] = mapped_column(String(128), primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    event_id: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    #: events whose handling finished through this position (an operator's progress figure)
    handled: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    owner: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


@dataclass(frozen=True, order=True, slots=True)
class StreamPosition:
    """After which row a reader goes on: `(txid, event_id)`; txid is 0 on SQLite."""

    txid: int = 0
    event_id: int = 0


@dataclass(frozen=True, slots=True)
class StreamItem:
    position: StreamPosition
    event: Event


class EventStream:
    """Reads one provider's events after a position, in an order no later commit can go behind."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"

    def head(self) -> StreamPosition:
        """A position after every event stored so far: where a handler started for the first time begins."""
        with self.engine.connect() as conn:
            if self.postgres:
                return StreamPosition(self._horizon(conn) - 1, _AFTER_ALL_IDS)
            return StreamPosition(0, int(conn.execute(select(func.max(EventRow.id))).scalar() or 0))

    @staticmethod
    def _horizon(conn) -> int:  # noqa: ANN001
        """The oldest transaction that may still add events to this database (or the next one to start).

        Every transaction below it has ended, so no row below it can appear later. Transactions of other
        databases on the same server are left out (they cannot write our events): a long job elsewhere on the
        cluster does not hold the handlers back. Taken from the statement's snapshot, so a transaction that
        ends while this runs still counts as running: conservative, never a skip."""
        return int(conn.execute(_HORIZON).scalar_one())

    def read(self, provider: str, after: StreamPosition, limit: int) -> list[StreamItem]:
        """Up to `limit` events of `provider` after `after`, oldest first, each with its own position."""
        if self.postgres:
            stmt = select(literal_column("events.txid::text::bigint"), *_ID_AND_EVENT)
            with self.engine.connect() as conn:
                horizon = self._horizon(conn)
                rows = conn.execute(self._after(stmt, provider, after, horizon).limit(limit)).all()
            return [StreamItem(StreamPosition(int(row[0]), row[1]), event_from_row(row[2:])) for row in rows]
        with Session(self.engine) as session:
            rows = session.execute(self._after(select(*_ID_AND_EVENT), provider, after).limit(limit)).all()
            if not rows and after.event_id and self._ids_restarted(session, after.event_id):
                # SQLite reuses ids once every row above them is gone (a retention purge of everything):
                # the rows there now are all newer than the position
                log.warning("event ids restarted below a handler position; reading from the start",
                            extra={"provider": provider, "position": after.event_id})
                rows = session.execute(
                    self._after(select(*_ID_AND_EVENT), provider, StreamPosition()).limit(limit)).all()
        return [StreamItem(StreamPosition(0, row[0]), event_from_row(row[1:])) for row in rows]

    def backlog(self, provider: str, after: StreamPosition, cap: int = 10_000) -> int:
        """How many events of `provider` wait after `after` (counted up to `cap`, so it stays cheap)."""
        with self.engine.connect() as conn:
            horizon = self._horizon(conn) if self.postgres else 0
            inner = self._after(select(EventRow.id), provider, after, horizon).limit(cap).subquery()
            return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())

    def _after(self, stmt, provider: str, after: StreamPosition, horizon: int = 0):  # noqa: ANN001, ANN202
        """`stmt` narrowed to `provider`'s events after `after` and, on PostgreSQL, below `horizon`, in order."""
        if not self.postgres:
            return stmt.where(EventRow.provider == provider, EventRow.id > after.event_id).order_by(EventRow.id)
        return (
            stmt.where(
                EventRow.provider == provider,
                text("(events.txid, events.id) > (CAST(CAST(:after_txid AS text) AS xid8), :after_id)"),
                text("events.txid < CAST(CAST(:horizon AS text) AS xid8)"),
            )
            .order_by(literal_column("events.txid"), EventRow.id)
            .params(after_txid=after.txid, after_id=after.event_id, horizon=horizon)
        )

    @staticmethod
    def _ids_restarted(session: Session, after_id: int) -> bool:
        return int(session.execute(select(func.max(EventRow.id))).scalar() or 0) < after_id


def default_owner() -> str:
    """This process, as a lease owner: host and pid (readable in `handler_positions`)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead_local_owner(owner: str | None) -> bool:
    """Whether `owner` ("host:pid") is a process of this host that no longer runs."""
    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class HandlerPositions:
    """The persisted (handler, partition) positions, each held under a lease by one process at a time."""

    def __init__(self, engine: Engine, owner: str | None = None, lease_seconds: float = 30.0) -> None:
        self.engine = engine
        self.owner = owner or default_owner()
        self.lease = timedelta(seconds=lease_seconds)

    def claim(self, handler: str, partition: str, start: Callable[[], StreamPosition]) -> StreamPosition | None:
        """Take or renew the lease and return the saved position; a new row starts at `start()` (asked only
        then: usually the stream's head). None: another process holds the lease."""
        now = datetime.now(UTC)
        key = (HandlerPositionRow.handler == handler, HandlerPositionRow.partition == partition)
        with Session(self.engine) as session, session.begin():
            taken = session.execute(
                update(HandlerPositionRow)
                .where(*key, or_(HandlerPositionRow.owner == self.owner, HandlerPositionRow.owner.is_(None),
                                 HandlerPositionRow.lease_until < now))
                .values(owner=self.owner, lease_until=now + self.lease)
            ).rowcount
            if taken:
                row = session.execute(select(HandlerPositionRow).where(*key)).scalar_one()
                return StreamPosition(row.txid, row.event_id)
            held = session.execute(select(HandlerPositionRow.owner).where(*key)).first()
            if held is not None:
                if not _dead_local_owner(held.owner):
                    return None  # held by another process whose lease has not run out
                # its process on this host is gone (kill -9, OOM): no need to wait for the lease to run out
                taken = session.execute(
                    update(HandlerPositionRow).where(*key, HandlerPositionRow.owner == held.owner)
                    .values(owner=self.owner, lease_until=now + self.lease)
                ).rowcount
                if not taken:
                    return None
                log.info("took over the position of a dead process", extra={
                    "handler": handler, "partition": partition, "previous_owner": held.owner})
                row = session.execute(select(HandlerPositionRow).where(*key)).scalar_one()
                return StreamPosition(row.txid, row.event_id)
        first = start()
        try:
            with Session(self.engine) as session, session.begin():
                session.add(HandlerPositionRow(
                    handler=handler, partition=partition, txid=first.txid, event_id=first.event_id, handled=0,
                    owner=self.owner, lease_until=now + self.lease, updated_at=now,
                ))
        except IntegrityError:
            return None  # another process created it first; it owns it now
        log.info("handler position created", extra={"handler": handler, "partition": partition,
                                                     "txid": first.txid, "event_id": first.event_id})
        return first

    def advance(self, handler: str, partition: str, position: StreamPosition, handled: int) -> bool:
        """Save `position` after `handled` more events were handled, renewing the lease. False: lease lost."""
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            moved = conn.execute(
                update(HandlerPositionRow)
                .where(HandlerPositionRow.handler == handler, HandlerPositionRow.partition == partition,
                       HandlerPositionRow.owner == self.owner)
                .values(txid=position.txid, event_id=position.event_id,
                        handled=HandlerPositionRow.handled + handled, lease_until=now + self.lease,
                        updated_at=now)
            ).rowcount
        return bool(moved)

    def release(self, handler: str, partition: str) -> None:
        """Give the lease up (a clean stop), so another process can take over at once."""
        with self.engine.begin() as conn:
            conn.execute(
                update(HandlerPositionRow)
                .where(HandlerPositionRow.handler == handler, HandlerPositionRow.partition == partition,
                       HandlerPositionRow.owner == self.owner)
                .values(owner=None, lease_until=None)
            )

    def all(self) -> list[HandlerPositionRow]:
        with Session(self.engine) as session:
            rows = session.scalars(select(HandlerPositionRow).order_by(HandlerPositionRow.handler,
                                                                       HandlerPositionRow.partition)).all()
            session.expunge_all()
        return list(rows)


def handler_status(engine: Engine, backlog_cap: int = 10_000) -> list[dict[str, object]]:
    """Each (handler, partition): its owner and lease, events handled, and how many wait (up to the cap).

    What an operator looks at to tell a stalled handler (backlog growing, `updated_at` old) from an idle one."""
    stream = EventStream(engine)
    out: list[dict[str, object]] = []
    for row in HandlerPositions(engine, owner="-").all():
        waiting = stream.backlog(row.partition, StreamPosition(row.txid, row.event_id), backlog_cap)
        out.append({
            "handler": row.handler, "partition": row.partition, "owner": row.owner, "lease_until": row.lease_until,
            "handled": row.handled, "backlog": waiting, "backlog_capped": waiting >= backlog_cap,
            "updated_at": row.updated_at,
        })
    return out
