"""Reading rollups: the rows of one instance, host or project at one granularity since a time, in the
contract shape `{"metric", "timestamp", "granularity_seconds", "avg", "max", "unit"}` (timestamps: period
start, UTC, ISO 8601). An instance is found by uuid or by the name Gnocchi or the inventory knows it by,
deleted ones included: their history is kept.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, select

from stackwatch.metrics.models import MetricInstanceRow, MetricRollupRow
from stackwatch.metrics.names import GRANULARITIES, UNITS

_AGE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class MetricsQueryError(ValueError):
    """A bad query (unknown granularity, unreadable time, ambiguous name): the message says what to give."""


def granularity_seconds(name: str) -> int:
    if name in GRANULARITIES:
        return GRANULARITIES[name]
    if name.isdigit() and int(name) in GRANULARITIES.values():
        return int(name)
    raise MetricsQueryError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {name!r}")


def since_time(value: str, now: datetime | None = None) -> datetime:
    """`24h`, `7d`, `30m` (that long before now) or an ISO 8601 time."""
    match = _AGE.match(value.strip())
    if match:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[match[2]]: int(match[1])})
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise MetricsQueryError(f"since must be an age like 24h, 7d or an ISO 8601 time, not {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def resolve_instance(engine: Engine, ref: str, provider: str | None = None) -> tuple[str, str | None]:
    """(instance uuid, its project) for a uuid or a name: Gnocchi's instances first, then the inventory's."""
    query = select(MetricInstanceRow.instance_id, MetricInstanceRow.project_id).where(
        or_(MetricInstanceRow.instance_id == ref, MetricInstanceRow.name == ref))
    if provider:
        query = query.where(MetricInstanceRow.provider == provider)
    with engine.connect() as conn:
        found = {r.instance_id: r.project_id for r in conn.execute(query)}
    if ref in found:
        return ref, found[ref]
    if len(found) > 1:
        raise MetricsQueryError(f"{ref!r} names {len(found)} instances: {', '.join(sorted(found))} (give the uuid)")
    if found:
        return next(iter(found.items()))
    from stackwatch.inventory.timeline import AmbiguousReference, resolve_vm

    try:
        return resolve_vm(engine, ref, provider), None
    except AmbiguousReference as exc:
        raise MetricsQueryError(str(exc)) from None


def rows(engine: Engine, scope: str, ref: str, granularity: int, since: datetime,
         provider: str | None = None, metrics: list[str] | None = None) -> list[dict[str, Any]]:
    """The stored rows of `scope`/`ref`, periods starting at or after `since`, ordered by metric and time."""
    r = MetricRollupRow
    query = select(r.metric, r.period_start, r.granularity, r.avg, r.max).where(
        r.scope == scope, r.ref == ref, r.granularity == granularity, r.period_start >= since,
    ).order_by(r.metric, r.period_start)
    if provider:
        query = query.where(r.provider == provider)
    if metrics:
        query = query.where(r.metric.in_(metrics))
    with engine.connect() as conn:
        return [{"metric": row.metric, "timestamp": row.period_start.astimezone(UTC).isoformat(),
                 "granularity_seconds": row.granularity, "avg": row.avg, "max": row.max,
                 "unit": UNITS.get(row.metric, "")} for row in conn.execute(query)]
