"""Tables of the event stream: events, quarantine, monitor cursors.

Timestamps are stored as UTC. `sort_time` is the event's own time, or when we received it for sources that
carry none (nova's documentation samples), so every timeline query orders by one indexed column.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Index, Integer, LargeBinary, String, Text, TypeDecorator, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; SQLite gives naive values back, so we re-attach UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _not_null(column: str) -> dict[str, Any]:
    where = text(f"{column} IS NOT NULL")
    return {"sqlite_where": where, "postgresql_where": where}


class Base(DeclarativeBase):
    pass


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64), nullable=False)
    message_id: Mapped[str] = mapped_column(String(255), nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    event_type: Mapped[str] = mapped_column(String(255), nullable=False)
    timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    sort_time: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    publisher_id: Mapped[str | None] = mapped_column(String(255))
    priority: Mapped[str | None] = mapped_column(String(16))
    project_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(255))
    vm_ref: Mapped[str | None] = mapped_column(String(255))
    host_ref: Mapped[str | None] = mapped_column(String(255))
    image_ref: Mapped[str | None] = mapped_column(String(255))
    volume_ref: Mapped[str | None] = mapped_column(String(255))
    snapshot_ref: Mapped[str | None] = mapped_column(String(255))
    network_ref: Mapped[str | None] = mapped_column(String(255))
    subnet_ref: Mapped[str | None] = mapped_column(String(255))
    port_ref: Mapped[str | None] = mapped_column(String(255))
    router_ref: Mapped[str | None] = mapped_column(String(255))
    floating_ip_ref: Mapped[str | None] = mapped_column(String(255))
    security_group_ref: Mapped[str | None] = mapped_column(String(255))
    stack_ref: Mapped[str | None] = mapped_column(String(255))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    group: Mapped[str] = mapped_column("event_group", String(32), nullable=False)
    level: Mapped[str] = mapped_column(String(16), nullable=False)
    collapsed_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    payload: Mapped[object] = mapped_column(JSON)  # json, not jsonb, on PostgreSQL: migration 0003

    __table_args__ = (
        Index("uq_events_provider_message", "provider", "message_id", unique=True),
        Index("ix_events_provider_time", "provider", "sort_time"),
        # partial: most identity, image and network events carry no VM or host (migration 0003)
        Index("ix_events_vm_time", "vm_ref", "sort_time", **_not_null("vm_ref")),
        Index("ix_events_host_time", "host_ref", "sort_time", **_not_null("host_ref")),
        Index("ix_events_project_time", "project_id", "sort_time"),
        Index("ix_events_type_time", "event_type", "sort_time"),
        Index("ix_events_time", "sort_time"),
    )


class QuarantineRow(Base):
    """Input we could not turn into an event: kept whole, with the reason, for inspection or replay."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64), nullable=False)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    raw: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)

    __table_args__ = (
        Index("ix_quarantine_provider_time", "provider", "received_at"),
        Index("uq_quarantine_provider_digest", "provider", "digest", unique=True),
    )


class MonitorCursorRow(Base):
    """Where a polling monitor (panko, http) resumes after a restart."""

    __tablename__ = "monitor_cursors"

    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    monitor: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[object] = mapped_column(JSONDocument)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
