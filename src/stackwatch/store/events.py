"""The event stream repository: batch writes (the drivers' fast paths are in store/inserts.py) and timeline queries.

A batch is one transaction: new events, collapsed-flood counters and quarantined input commit together, so
the caller acknowledges its source only for what is durably stored. Writes take records (model.Record: the
columns in order, the payload JSON text already), which both drivers bind as they are.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from stackwatch.events.model import (
    R_MESSAGE_ID,
    R_PROVIDER,
    R_RECEIVED_AT,
    Event,
    Record,
)
from stackwatch.store.errors import as_store_error
from stackwatch.store.inserts import add_collapsed, copy_insert_pg, insert_sqlite
from stackwatch.store.models import EventRow, MonitorCursorRow, QuarantineRow
from stackwatch.store.reads import EventQuery, EventReader, glob_to_like

__all__ = ["EventQuery", "EventStore", "QuarantineItem", "QuarantinedRecord", "WriteResult", "glob_to_like"]

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


#: rows this store writes before it first checks that PostgreSQL has statistics for `events` (then x8 each time)
_STATISTICS_CHECK_ROWS = 1000


class EventStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._written = 0
        self._statistics_check_at = _STATISTICS_CHECK_ROWS
        self._reader = EventReader(self._driver_connection, self.dialect)

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

    # -- reads (store/reads.py: the same SQL the CLI's lean read path runs) -------------------------------
    @contextmanager
    def _driver_connection(self) -> Iterator[Any]:
        with self.engine.connect() as conn:
            yield conn.connection.driver_connection

    def query(self, q: EventQuery) -> list[Event]:
        """Events matching `q`: the latest `limit` of them, in chronological order."""
        return self._reader.query(q)

    def get(
        self, message_id: str, provider: str | None = None, projects: tuple[str, ...] | None = None
    ) -> Event | None:
        return self._reader.get(message_id, provider, projects)

    def collapsed_count(self, message_id: str, provider: str) -> int:
        return self._reader.collapsed_count(message_id, provider)

    def count(self, provider: str | None = None) -> int:
        return self._reader.count(provider)

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
