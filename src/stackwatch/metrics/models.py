"""Metrics tables on the store's Base: rollups (every scope and granularity in one table), the capture's
cursor per Gnocchi metric, and the instances Gnocchi knows (name, host, project) for lookups by name.

A rollup row keeps `total` and `count` beside `avg` and `max`, so a coarser period is the count-weighted mean
of the finer ones (a daily avg is the mean of its hours weighted by their 5-minute counts).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Double, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stackwatch.store.models import Base, BigId, UTCDateTime


class MetricRollupRow(Base):
    __tablename__ = "metric_rollups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64), nullable=False)
    scope: Mapped[str] = mapped_column(String(8), nullable=False)  # vm, host, project
    ref: Mapped[str] = mapped_column(String(255), nullable=False)
    metric: Mapped[str] = mapped_column(String(32), nullable=False)
    granularity: Mapped[int] = mapped_column(Integer, nullable=False)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    avg: Mapped[float] = mapped_column(Double, nullable=False)
    max: Mapped[float] = mapped_column(Double, nullable=False)
    total: Mapped[float] = mapped_column(Double, nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    host: Mapped[str | None] = mapped_column(String(255))  # vm rows: where the instance ran then
    project_id: Mapped[str | None] = mapped_column(String(255))  # vm rows: its project

    __table_args__ = (
        Index("uq_metric_rollups_key", "provider", "scope", "ref", "metric", "granularity", "period_start",
              unique=True),
        Index("ix_metric_rollups_period", "provider", "granularity", "period_start"),
    )


class MetricCursorRow(Base):
    """The last point captured of one Gnocchi metric of one resource (and its value: a counter's next rate
    needs it), so a restart resumes there: no gap, no point twice."""

    __tablename__ = "metric_cursors"

    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    metric: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(64), nullable=False)  # the instance it rolls up to
    last_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_value: Mapped[float] = mapped_column(Double, nullable=False)

    __table_args__ = (Index("ix_metric_cursors_instance", "provider", "instance_id"),)


class MetricInstanceRow(Base):
    """An instance as Gnocchi last described it: kept after it ends so its history stays findable by name."""

    __tablename__ = "metric_instances"

    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)

    __table_args__ = (Index("ix_metric_instances_name", "name"),)


class MetricRollupPendingRow(Base):
    """Periods whose host/project rows and hourly/daily rollups are still to be recomputed: marked in the
    transaction of each batch, cleared once the cycle has rolled them up, so a capture that stopped between
    the two leaves the work for the next cycle instead of stale rollups."""

    __tablename__ = "metric_rollup_pending"

    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_period: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_period: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
