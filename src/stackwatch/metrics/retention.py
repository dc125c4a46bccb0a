"""Retention per granularity (7 days of 5-minute rows, 90 of hourly, 2 years of daily by default), and the
cursors of series that stopped long ago. An instance deleted in the inventory keeps its rows: only age
removes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete

from stackwatch.config.metrics import MetricsRetention
from stackwatch.metrics.models import MetricCursorRow, MetricRollupRow


def purge(engine: Engine, provider: str, retention: MetricsRetention, now: datetime | None = None) -> dict[int, int]:
    """Delete rows older than their granularity's retention; returns rows deleted per granularity."""
    now = now or datetime.now(UTC)
    days = {300: retention.five_minute_days, 3600: retention.hourly_days, 86400: retention.daily_days}
    deleted: dict[int, int] = {}
    with engine.begin() as conn:
        for granularity, keep in days.items():
            deleted[granularity] = conn.execute(delete(MetricRollupRow).where(
                MetricRollupRow.provider == provider, MetricRollupRow.granularity == granularity,
                MetricRollupRow.period_start < now - timedelta(days=keep))).rowcount
        # a series silent for longer than 5-minute rows are kept will be backfilled if it ever comes back
        conn.execute(delete(MetricCursorRow).where(
            MetricCursorRow.provider == provider,
            MetricCursorRow.last_at < now - timedelta(days=retention.five_minute_days)))
    return deleted
