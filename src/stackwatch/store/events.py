"""The event stream repository: batch writes (the drivers' fast paths are in store/inserts.py) and timeline queries.

A batch is one transaction: new events, collapsed-flood counters and quarantined input commit together, so
the caller acknowledges its source only for what is durably stored. Writes take records (model.Record: the
columns in order, the payload JSON text already), which both drivers bind as they are.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from stackwatch.events.model import (
    R_MESSAGE_ID,
    R_PROVIDER,
    R_RECEIVED_AT,
    REF_FIELDS,
    Event,
    Record,
)
from stackwatch.store.errors import as_store_error
from stackwatch.store.inserts import add_collapsed, copy_insert_pg, insert_sqlite
from stackwatch.store.models import EventRow, MonitorCursorRow, QuarantineRow
from stackwatch.store.scope import restrict

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class QuarantineItem:
    provider: str
    source: str
    reason: str
    raw: bytes
    received_at: datetime

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    id: int
    provider: str
    source: str
    received_at: datetime
    reason: str
    size: int
    digest: str
    raw: bytes


@dataclass(slots=True)
class WriteResult:
    stored: list[str] = field(default_factory=list)  # message_ids newly stored, in input order
    duplicates: int = 0
    quarantined: int = 0


@dataclass(frozen=True, slots=True)
class EventQuery:
    provider: str | None = None
    vm: str | None = None
    host: str | None = None
    project: str | None = None
    type_glob: str | None = None
    group: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    projects: tuple[str, ...] | None = None  # the caller's visible projects (store/scope.py); None: all


def glob_to_like(pattern: str) -> str:
    """`compute.instance.*` -> `compute.instance.%` with LIKE's own wildcards escaped."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


#: rows this store writes before it first checks that PostgreSQL has statistics for `events` (then x8 each time)
_STATISTICS_CHECK_ROWS = 1000


class EventStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._written = 0
        self._statistics_check_at = _STATISTICS_CHECK_ROWS

    @property
    def concurrent_writers(self) -> int:
        """Batches worth writing at once: PostgreSQL overlaps one's COPY with another's INSERT (bulk ingest
        1 -> 2 writers measured +40 %); SQLite has one writer at a time, more would only wait on its lock."""
        return 2 if self.dialect == "postgresql" else 1

    # -- writes -----------------------------------------------------------------------------------------
    def write_batch(
        self,
        events: Sequence[Event],
        collapsed: dict[tuple[str, str], int] | None = None,
        quarantine: Sequence[QuarantineItem] = (),
    ) -> WriteResult:
        """`write_records` for Event objects (the catcher hands records; tests and tools have events)."""
        now = datetime.now(UTC)
        records = [ev.to_record() for ev in events]
        for record in records:
            if record[R_RECEIVED_AT] is None:
                record[R_RECEIVED_AT] = now
        return self.write_records(records, collapsed, quarantine)

    def write_records(
        self,
        records: Sequence[Record],
        collapsed: dict[tuple[str, str], int] | None = None,
        quarantine: Sequence[QuarantineItem] = (),
    ) -> WriteResult:
        """Store records once each, add collapsed counts to their (provider, message_id) rows, keep quarantine.

        Raises StoreUnavailable when the database cannot be reached: nothing of the batch was written.
        """
        result = WriteResult(quarantined=len(quarantine))
        unique: dict[tuple[str, str], Record] = {}
        for record in records:
            unique.setdefault((record[R_PROVIDER], record[R_MESSAGE_ID]), record)
        result.duplicates = len(records) - len(unique)
        stored = self.write_rows(list(unique.values()), collapsed or {}, list(quarantine))
        result.stored = [key[1] for key in unique if key[1] in stored]
        result.duplicates += len(unique) - len(result.stored)
        return result

    def write_rows(
        self,
        rows: list[Record],
        collapsed: dict[tuple[str, str], int],
        quarantine: list[QuarantineItem],
    ) -> set[str]:
        """One transaction: records (unique in the batch), collapsed counts, quarantine.

        Returns the message_ids that were new. The unit a store process runs for its parent (process.py).
        """
        stored: set[str] = set()
        try:
            with self.engine.begin() as conn:
                if rows:
                    insert = copy_insert_pg if self.dialect == "postgresql" else insert_sqlite
                    stored = insert(conn, rows)
                if collapsed:
                    add_collapsed(conn, collapsed)
                if quarantine:
                    self._insert_quarantine(conn, quarantine)
        except Exception as exc:  # driver errors from raw cursors are not SQLAlchemyError: classify them all
            raise as_store_error(exc) from exc
        self._written += len(rows)
        if self._written >= self._statistics_check_at and self.dialect == "postgresql":
            self._statistics_check_at *= 8
            self._analyze_if_unknown()
        return stored

    def _analyze_if_unknown(self) -> None:
        """ANALYZE `events` when PostgreSQL's statistics know fewer rows than this store alone wrote (never
        gathered: autovacuum off, or a table younger than autovacuum's first visit).

        Without them the planner serves a collapsed count's `UPDATE ... WHERE provider = ? AND message_id = ?`
        from ix_events_provider_time and reads every event of the provider (15-58 ms an UPDATE at 32k rows,
        growing with the table) instead of from the unique index (0.2 ms): bench/RESULTS.md, session 7.
        A failure here costs only speed: logged, never raised."""
        try:
            with self.engine.begin() as conn:
                known = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = 'events'::regclass").scalar()
                if known is not None and known < self._written / 2:  # -1: never analyzed; 0: analyzed empty
                    conn.exec_driver_sql("ANALYZE events")
                    log.info("analyzed the events table (it had no statistics)")
        except Exception as exc:  # noqa: BLE001
            log.warning("could not analyze the events table: %s", exc.__class__.__name__)

    def _insert_quarantine(self, conn, items: Sequence[QuarantineItem]) -> None:  # noqa: ANN001
        rows = [
            {
                "provider": q.provider,
                "source": q.source,
                "received_at": q.received_at,
                "reason": q.reason[:4000],
                "size": len(q.raw),
                "digest": q.digest,
                "raw": q.raw,
            }
            for q in items
        ]
        dialect_insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        stmt = dialect_insert(QuarantineRow).on_conflict_do_nothing(index_elements=["provider", "digest"])
        conn.execute(stmt, rows)

    def purge(self, older_than: datetime, batch_size: int = 5000, provider: str | None = None) -> int:
        """Delete events older than `older_than` in bounded batches (short transactions, no long locks)."""
        total = 0
        while True:
            ids = select(EventRow.id).where(EventRow.sort_time < older_than)
            if provider:
                ids = ids.where(EventRow.provider == provider)
            ids = ids.order_by(EventRow.sort_time).limit(batch_size)
            with self.engine.begin() as conn:
                deleted = conn.execute(delete(EventRow).where(EventRow.id.in_(ids.scalar_subquery()))).rowcount
            total += deleted
            if deleted < batch_size:
                return total

    # -- reads ------------------------------------------------------------------------------------------
    def query(self, q: EventQuery) -> list[Event]:
        """Events matching `q`: the latest `limit` of them, in chronological order."""
        stmt = restrict(select(*_EVENT_COLUMNS), EventRow.project_id, q.projects)
        if q.provider:
            stmt = stmt.where(EventRow.provider == q.provider)
        if q.vm:
            stmt = stmt.where(EventRow.vm_ref == q.vm)
        if q.host:
            stmt = stmt.where(EventRow.host_ref == q.host)
        if q.project:
            stmt = stmt.where(EventRow.project_id == q.project)
        if q.type_glob:
            if any(ch in q.type_glob for ch in "*?"):
                stmt = stmt.where(EventRow.event_type.like(glob_to_like(q.type_glob), escape="\\"))
            else:
                stmt = stmt.where(EventRow.event_type == q.type_glob)
        if q.group:
            stmt = stmt.where(EventRow.group == q.group)
        if q.since:
            stmt = stmt.where(EventRow.sort_time >= q.since)
        if q.until:
            stmt = stmt.where(EventRow.sort_time < q.until)
        stmt = stmt.order_by(EventRow.sort_time.desc(), EventRow.id.desc()).limit(max(1, q.limit))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [_row_to_event(row) for row in reversed(rows)]

    def get(
        self, message_id: str, provider: str | None = None, projects: tuple[str, ...] | None = None
    ) -> Event | None:
        """One event by message id; `projects` restricts it as EventQuery.projects does (None: any)."""
        stmt = restrict(select(*_EVENT_COLUMNS).where(EventRow.message_id == message_id), EventRow.project_id, projects)
        if provider:
            stmt = stmt.where(EventRow.provider == provider)
        with self.engine.connect() as conn:
            row = conn.execute(stmt.limit(1)).first()
        return _row_to_event(row) if row else None

    def collapsed_count(self, message_id: str, provider: str) -> int:
        stmt = select(EventRow.collapsed_count).where(
            EventRow.provider == provider, EventRow.message_id == message_id
        )
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar() or 0)

    def count(self, provider: str | None = None) -> int:
        stmt = select(func.count()).select_from(EventRow)
        if provider:
            stmt = stmt.where(EventRow.provider == provider)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def quarantined(self, provider: str | None = None, limit: int = 100) -> list[QuarantinedRecord]:
        stmt = select(QuarantineRow).order_by(QuarantineRow.id.desc()).limit(limit)
        if provider:
            stmt = stmt.where(QuarantineRow.provider == provider)
        with Session(self.engine) as session:
            rows = session.scalars(stmt).all()
        return [
            QuarantinedRecord(
                id=r.id, provider=r.provider, source=r.source, received_at=r.received_at, reason=r.reason,
                size=r.size, digest=r.digest, raw=r.raw,
            )
            for r in rows
        ]

    def quarantine_count(self, provider: str | None = None) -> int:
        stmt = select(func.count()).select_from(QuarantineRow)
        if provider:
            stmt = stmt.where(QuarantineRow.provider == provider)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    # -- monitor cursors ---------------------------------------------------------------------------------
    def get_cursor(self, provider: str, monitor: str) -> object | None:
        stmt = select(MonitorCursorRow.position).where(
            MonitorCursorRow.provider == provider, MonitorCursorRow.monitor == monitor
        )
        with self.engine.connect() as conn:
            return conn.execute(stmt).scalar()

    def set_cursor(self, provider: str, monitor: str, position: object) -> None:
        values = {"provider": provider, "monitor": monitor, "position": position, "updated_at": datetime.now(UTC)}
        dialect_insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        stmt = dialect_insert(MonitorCursorRow).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["provider", "monitor"],
            set_={"position": stmt.excluded.position, "updated_at": stmt.excluded.updated_at},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def dispose(self) -> None:
        self.engine.dispose()


#: the event columns, each labelled with its EventRow attribute name: reads select these (Core rows, not ORM
#: objects: half the cost of a 500-event timeline, bench/RESULTS.md issue 16) and `_row_to_event` reads both
_EVENT_COLUMNS = [getattr(EventRow, attr).label(attr) for attr in EventRow.__mapper__.column_attrs.keys()]  # noqa: SIM118 - names


def _row_to_event(r: EventRow) -> Event:
    return Event(
        message_id=r.message_id,
        provider=r.provider,
        source=r.source,
        event_type=r.event_type,
        timestamp=r.timestamp,
        received_at=r.received_at,
        publisher_id=r.publisher_id,
        priority=r.priority,
        project_id=r.project_id,
        user_id=r.user_id,
        request_id=r.request_id,
        group=r.group,
        level=r.level,
        payload=r.payload,
        collapsed_count=r.collapsed_count or 0,
        **{name: getattr(r, name) for name in REF_FIELDS},
    )
