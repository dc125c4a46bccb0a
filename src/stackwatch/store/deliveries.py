"""Tables of the delivery outbox (push/outbox.py) and of automation rules' audit (switchboard/rules).

- `deliveries`: one row per thing to deliver, unique per (source, owner, action_index, message_id), so a
  batch handled twice after a crash enqueues nothing twice and a delivery that succeeded never runs again.
  `lane` orders deliveries of one (source, owner): a later one waits while an earlier one of the same lane
  is pending. `lease_owner`/`lease_until` say which process is sending it now.
- `delivery_attempts`: every attempt (number, time, duration, status code or error).
- `rule_matches`: every (rule, event) match, throttled or not (unique: a replay records it once).
- `rule_throttles`: when each (rule, group) last fired, in event time, so a throttle survives a restart.
Migration 0007_deliveries creates them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from stackwatch.store.models import Base, BigId, JSONDocument, UTCDateTime

SOURCES = ("rule", "subscription")
STATES = ("pending", "done", "dead")


class DeliveryRow(Base):
    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16), nullable=False)  # rule | subscription
    owner: Mapped[str] = mapped_column(String(128), nullable=False)  # the rule's or subscription's name
    action_index: Mapped[int] = mapped_column(Integer, nullable=False)
    message_id: Mapped[str] = mapped_column(String(255), nullable=False)
    provider: Mapped[str | None] = mapped_column(String(64))
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    lane: Mapped[str] = mapped_column(String(255), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)  # webhook | refresh | fleece | log | ...
    target: Mapped[str | None] = mapped_column(Text)  # what it goes to, masked, for listings
    spec: Mapped[object] = mapped_column(JSONDocument, nullable=False)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(8), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("uq_deliveries_key", "source", "owner", "action_index", "message_id", unique=True),
        Index("ix_deliveries_due", "state", "next_attempt_at"),
        Index("ix_deliveries_lane", "source", "owner", "lane", "state", "id"),
        Index("ix_deliveries_message", "message_id"),
    )


class DeliveryAttemptRow(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    duration_ms: Mapped[float] = mapped_column(Float, nullable=False)
    verdict: Mapped[str] = mapped_column(String(8), nullable=False)  # ok | retry | final
    status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (Index("ix_delivery_attempts_delivery", "delivery_id", "attempt"),)


class RuleMatchRow(Base):
    __tablename__ = "rule_matches"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(128), nullable=False)
    provider: Mapped[str] = mapped_column(String(64), nullable=False)
    message_id: Mapped[str] = mapped_column(String(255), nullable=False)
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(255), nullable=False)
    matched_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    throttled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    actions: Mapped[int] = mapped_column(Integer, nullable=False, default=0)

    __table_args__ = (
        Index("uq_rule_matches_key", "rule", "provider", "message_id", unique=True),
        Index("ix_rule_matches_message", "message_id"),
        Index("ix_rule_matches_rule_time", "rule", "matched_at"),
    )


class RuleThrottleRow(Base):
    __tablename__ = "rule_throttles"

    rule: Mapped[str] = mapped_column(String(128), primary_key=True)
    group_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
