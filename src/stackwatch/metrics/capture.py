"""One capture cycle for one provider: list Gnocchi's instances, then per batch of instances three
`/v1/aggregates` requests (instance, instance_disk, instance_network_interface metrics), never one request per
metric per VM; turn the series into 5-minute values (arithmetic.py) and store each batch with its cursors.

Where a cycle starts: each batch asks from the oldest cursor of its instances' series (a new instance: the
backfill window, 24 h by default) up to the last closed 5-minute bucket; points at or before a series' cursor
are skipped. So a cycle that failed (Gnocchi down) or was stopped between batches is caught up by the next
one, and nothing is stored twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from stackwatch.config.settings import ProviderConfig
from stackwatch.metrics import arithmetic as ar
from stackwatch.metrics.gnocchi import GnocchiClient
from stackwatch.metrics.models import MetricCursorRow
from stackwatch.metrics.names import RESOURCE_TYPES, SUMMED, sources_for
from stackwatch.metrics.rollup import Batch, Instance, roll_up_pending, write_batch

log = logging.getLogger(__name__)


@dataclass
class CycleReport:
    provider: str
    until: datetime  # buckets starting before this were captured
    instances: int = 0
    batches: int = 0
    requests: int = 0
    points: int = 0
    rows: int = 0
    no_vcpus: int = 0  # cpu intervals skipped: no vcpus known for the instance
    seconds: float = 0.0
    rollup_seconds: float = 0.0
    gnocchi_seconds: float = 0.0
    stopped: bool = False
    per_batch: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in vars(self).items()
                if k != "per_batch"}


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Capture:
    """Captures one provider's metrics into the store; `cycle()` is one pass, safe to repeat at any time."""

    def __init__(self, provider: ProviderConfig, engine: Engine, client: GnocchiClient | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if provider.metrics is None:
            raise ValueError(f"provider {provider.name} has no metrics section")
        self.provider = provider
        self.config = provider.metrics
        self.engine = engine
        self._client = client
        self.clock = clock

    @property
    def client(self) -> GnocchiClient:
        if self._client is None:
            self._client = GnocchiClient.for_provider(self.provider)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def cycle(self, stop: threading.Event | None = None) -> CycleReport:
        t0 = time.monotonic()
        client = self.client
        requests_before = client.requests
        before = ar.period_of(self.clock())
        backfill = before - timedelta(hours=self.config.backfill_hours)
        report = CycleReport(self.provider.name, before)
        docs = client.search("instance", {"or": [{"=": {"ended_at": None}},
                                                 {">=": {"ended_at": backfill.isoformat()}}]})
        instances = [Instance(d["id"], d.get("display_name"), d.get("host"), d.get("project_id"),
                              _when(d.get("ended_at"))) for d in docs]
        report.instances = len(instances)
        cursors = self._cursors()
        size = self.config.batch_size
        for i in range(0, len(instances), size):
            if stop is not None and stop.is_set():
                report.stopped = True
                break
            tb = time.monotonic()
            batch = self._batch(instances[i:i + size], cursors, backfill, before, report)
            report.rows += write_batch(self.engine, self.provider.name, batch, self.clock())
            report.points += len(batch.values)
            report.batches += 1
            report.per_batch.append(time.monotonic() - tb)
        tr = time.monotonic()
        roll_up_pending(self.engine, self.provider.name)  # also what an earlier, interrupted cycle left
        report.rollup_seconds = time.monotonic() - tr
        report.requests = client.requests - requests_before
        report.seconds = time.monotonic() - t0
        return report

    def _cursors(self) -> dict[tuple[str, str], tuple[str, ar.Cursor]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(MetricCursorRow.resource_id, MetricCursorRow.metric,
                                       MetricCursorRow.instance_id, MetricCursorRow.last_at,
                                       MetricCursorRow.last_value).where(
                MetricCursorRow.provider == self.provider.name))
            return {(r.resource_id, r.metric): (r.instance_id, ar.Cursor(r.last_at, r.last_value)) for r in rows}

    def _batch(self, instances: list[Instance], cursors: dict[tuple[str, str], tuple[str, ar.Cursor]],
               backfill: datetime, before: datetime, report: CycleReport) -> Batch:
        ids = [inst.id for inst in instances]
        wanted = set(ids)
        oldest: dict[str, datetime] = {}
        for owner, cursor in cursors.values():
            if owner in wanted and (owner not in oldest or cursor.at < oldest[owner]):
                oldest[owner] = cursor.at
        # an instance with no cursor yet is backfilled; the others resume at their oldest series
        start = min([backfill] if len(oldest) < len(wanted) else list(oldest.values()))
        batch = Batch(instances, {}, {})
        if start >= before:
            return batch
        for resource_type in RESOURCE_TYPES:
            sources = sources_for(resource_type)
            on_instance = resource_type == "instance"
            # no `stop`: the open bucket is skipped below (arithmetic.after), but a `vcpus` point there is
            # what cpu_util needs when nova's audit notification is the only source of vcpus so far
            tg = time.monotonic()
            groups = self.client.aggregates(
                resource_type, [s.gnocchi for s in sources],
                {"in": {"id" if on_instance else "instance_id": ids}},
                start=start, groupby=None if on_instance else "instance_id")
            report.gnocchi_seconds += time.monotonic() - tg
            for group, measures in groups:
                for rid, series in measures.items():
                    owner = rid if on_instance else group.get("instance_id")
                    if owner in wanted:
                        self._series(owner, rid, series, sources, cursors, before, batch, report)
        return batch

    @staticmethod
    def _series(owner: str, rid: str, series: dict[str, list[ar.Point]], sources: tuple, cursors: dict,
                before: datetime, batch: Batch, report: CycleReport) -> None:
        """Turn one resource's series into values of its instance, and move their cursors."""
        for source in sources:
            known = cursors.get((rid, source.gnocchi))
            cursor = known[1] if known else None
            fresh = ar.after(series.get(source.gnocchi, []), cursor, before)
            if not fresh:
                continue
            if source.kind == "gauge":
                produced: list[tuple[datetime, float | None]] = [(ar.period_of(t), v) for t, v in fresh]
            elif source.kind == "cpu_util":
                vcpus = cursors.get((rid, "vcpus"))
                lookup = ar.VcpuLookup(series.get("vcpus", []), vcpus[1] if vcpus else None)
                produced = list(ar.cpu_util(fresh, cursor, lookup))
            else:
                produced = list(ar.rates(fresh, cursor))
            for period, value in produced:
                if value is None:
                    report.no_vcpus += 1
                    continue
                key = (owner, source.stored, period)
                if source.stored in SUMMED:
                    batch.values[key] = batch.values.get(key, 0.0) + value
                else:
                    batch.values[key] = value
            batch.cursors[(rid, source.gnocchi)] = (owner, ar.Cursor(*fresh[-1]))
