"""Writing a captured batch: instance 5-minute rows, cursors and the periods they touched, in ONE transaction;
then, once per cycle, the rollups of those periods.

Either a batch is stored whole with its cursors or not at all, so a capture stopped anywhere resumes
without a gap or a duplicate. The periods a batch touched are marked pending in the same transaction;
`roll_up_pending` (at the end of every cycle) derives host and project 5-minute rows from the instance rows
(SQL GROUP BY: cpu_util averaged, the rest summed), hourly rows from 5-minute rows and daily rows from hourly
ones (avg = sum(total) / sum(count), max = max(max)) for those periods, so the period in progress is updated
in place, and a cycle stopped before it leaves the marks for the next one. Once per cycle, not per batch: the
hour and the day in progress are the same for every batch (bench/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, case, delete, func, insert, literal, select, tuple_, update

from stackwatch.metrics.arithmetic import Cursor, period_of
from stackwatch.metrics.models import MetricCursorRow, MetricInstanceRow, MetricRollupPendingRow, MetricRollupRow
from stackwatch.metrics.names import HOST_MEAN, STEP, SUMMED
from stackwatch.store.models import UTCDateTime

R = MetricRollupRow.__table__
C = MetricCursorRow.__table__
I = MetricInstanceRow.__table__  # noqa: E741
P = MetricRollupPendingRow.__table__
CHUNK = 500


@dataclass(frozen=True)
class Instance:
    id: str
    name: str | None
    host: str | None
    project_id: str | None
    ended_at: datetime | None


@dataclass
class Batch:
    """What one aggregates round produced: values per (instance, stored metric, period) and the new cursors
    per (resource id, Gnocchi metric) with the instance they belong to."""

    instances: list[Instance]
    values: dict[tuple[str, str, datetime], float]
    cursors: dict[tuple[str, str], tuple[str, Cursor]]


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def write_batch(engine: Engine, provider: str, batch: Batch, seen_at: datetime) -> int:
    """Store `batch` (see the module docstring); returns the instance 5-minute rows written."""
    with engine.begin() as conn:
        _upsert_instances(conn, provider, batch.instances, seen_at)
        written = _write_vm_rows(conn, provider, batch)
        _write_cursors(conn, provider, batch.cursors)
        if batch.values:
            periods = [p for _vm, _m, p in batch.values]
            _mark_pending(conn, provider, min(periods), max(periods))
    return written


def _mark_pending(conn: Connection, provider: str, lo: datetime, hi: datetime) -> None:
    row = conn.execute(select(P.c.first_period, P.c.last_period).where(P.c.provider == provider)).first()
    if row is None:
        conn.execute(insert(P).values(provider=provider, first_period=lo, last_period=hi))
    else:
        conn.execute(update(P).where(P.c.provider == provider).values(
            first_period=min(lo, row.first_period), last_period=max(hi, row.last_period)))


def roll_up_pending(engine: Engine, provider: str) -> tuple[datetime, datetime] | None:
    """Recompute the rollups of the periods marked pending, and clear the mark (one transaction)."""
    with engine.begin() as conn:
        row = conn.execute(select(P.c.first_period, P.c.last_period).where(P.c.provider == provider)).first()
        if row is None:
            return None
        recompute(conn, provider, row.first_period, row.last_period)
        conn.execute(delete(P).where(P.c.provider == provider))
        return row.first_period, row.last_period


def _upsert_instances(conn: Connection, provider: str, instances: list[Instance], seen_at: datetime) -> None:
    for part in _chunks(instances):
        conn.execute(delete(I).where(I.c.provider == provider, I.c.instance_id.in_([i.id for i in part])))
        conn.execute(insert(I), [{"provider": provider, "instance_id": i.id, "name": i.name, "host": i.host,
                                  "project_id": i.project_id, "ended_at": i.ended_at, "seen_at": seen_at}
                                 for i in part])


def _write_vm_rows(conn: Connection, provider: str, batch: Batch) -> int:
    """Insert new instance rows; a summed metric (disk, network) adds to a row another device already wrote."""
    if not batch.values:
        return 0
    where = {i.id: i for i in batch.instances}
    keys = list(batch.values)
    existing: dict[tuple[str, str, datetime], tuple[int, float]] = {}
    for part in _chunks(keys):
        rows = conn.execute(select(R.c.id, R.c.ref, R.c.metric, R.c.period_start, R.c.total).where(
            R.c.provider == provider, R.c.scope == "vm", R.c.granularity == STEP,
            tuple_(R.c.ref, R.c.metric, R.c.period_start).in_(part)))
        existing.update({(r.ref, r.metric, r.period_start): (r.id, r.total) for r in rows})
    inserts, updates = [], []
    for (vm, metric, period), value in batch.values.items():
        if (vm, metric, period) in existing:
            row_id, old = existing[(vm, metric, period)]
            value = old + value if metric in SUMMED else value
            updates.append({"row_id": row_id, "v": value})
        else:
            inst = where.get(vm)
            inserts.append({"provider": provider, "scope": "vm", "ref": vm, "metric": metric, "granularity": STEP,
                            "period_start": period, "avg": value, "max": value, "total": value, "count": 1,
                            "host": inst.host if inst else None, "project_id": inst.project_id if inst else None})
    if inserts:
        conn.execute(insert(R), inserts)
    if updates:
        from sqlalchemy import bindparam

        conn.execute(update(R).where(R.c.id == bindparam("row_id")).values(
            avg=bindparam("v"), max=bindparam("v"), total=bindparam("v")), updates)
    return len(inserts) + len(updates)


def _write_cursors(conn: Connection, provider: str, cursors: Mapping[tuple[str, str], tuple[str, Cursor]]) -> None:
    keys = list(cursors)
    for part in _chunks(keys):
        conn.execute(delete(C).where(C.c.provider == provider, tuple_(C.c.resource_id, C.c.metric).in_(part)))
        conn.execute(insert(C), [{"provider": provider, "resource_id": rid, "metric": metric,
                                  "instance_id": cursors[(rid, metric)][0], "last_at": cursors[(rid, metric)][1].at,
                                  "last_value": cursors[(rid, metric)][1].value} for rid, metric in part])


def recompute(conn: Connection, provider: str, lo: datetime, hi: datetime) -> None:
    """Host/project 5-minute rows for [lo, hi], then the hours and days that contain them."""
    conn.execute(delete(R).where(R.c.provider == provider, R.c.scope.in_(("host", "project")),
                                 R.c.granularity == STEP, R.c.period_start.between(lo, hi)))
    for scope, column in (("host", R.c.host), ("project", R.c.project_id)):
        value = case((R.c.metric.in_(sorted(HOST_MEAN)), func.avg(R.c.avg)), else_=func.sum(R.c.avg))
        rows = select(R.c.provider, literal(scope), column, R.c.metric, literal(STEP), R.c.period_start,
                      value, value, value, literal(1)).where(
            R.c.provider == provider, R.c.scope == "vm", R.c.granularity == STEP,
            R.c.period_start.between(lo, hi), column.is_not(None),
        ).group_by(R.c.provider, column, R.c.metric, R.c.period_start)
        conn.execute(insert(R).from_select(
            ["provider", "scope", "ref", "metric", "granularity", "period_start", "avg", "max", "total", "count"],
            rows))
    for finer, coarser in ((STEP, 3600), (3600, 86400)):
        start = period_of(lo, coarser)
        while start <= hi:
            _roll(conn, provider, finer, coarser, start)
            start += timedelta(seconds=coarser)


def _roll(conn: Connection, provider: str, finer: int, coarser: int, start: datetime) -> None:
    """Replace the `coarser` rows of the period starting at `start` by the count-weighted rollup of its
    `finer` rows, for every scope and ref at once."""
    end = start + timedelta(seconds=coarser)
    conn.execute(delete(R).where(R.c.provider == provider, R.c.granularity == coarser, R.c.period_start == start))
    rows = select(
        R.c.provider, R.c.scope, R.c.ref, R.c.metric, literal(coarser), literal(start, UTCDateTime()),
        func.sum(R.c.total) / func.sum(R.c.count), func.max(R.c.max), func.sum(R.c.total), func.sum(R.c.count),
        func.max(R.c.host), func.max(R.c.project_id),
    ).where(R.c.provider == provider, R.c.granularity == finer, R.c.period_start >= start,
            R.c.period_start < end).group_by(R.c.provider, R.c.scope, R.c.ref, R.c.metric)
    conn.execute(insert(R).from_select(
        ["provider", "scope", "ref", "metric", "granularity", "period_start", "avg", "max", "total", "count",
         "host", "project_id"], rows))
