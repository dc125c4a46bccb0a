"""The arithmetic, fixed so results can be checked independently (issue 17):

- a cumulative counter's rate over an interval (t0, t1] is (v1 - v0) / (t1 - t0) and belongs to the 5-minute
  period containing t1; when the counter goes down (a reset: a rebooted guest) the interval's delta is v1
  (Gnocchi's own `rate:*` goes negative there, which is why we read `mean` and do this ourselves);
- `cpu_util` = delta ns / ((t1 - t0) s x 1e9 x vcpus) x 100, vcpus from the `vcpus` metric at t1;
- a gauge's 5-minute value is Gnocchi's 5-minute mean.

Pure functions over (timestamp, value) points; `Cursor` is the last point already captured of one series.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from stackwatch.metrics.names import STEP


@dataclass(frozen=True)
class Cursor:
    at: datetime
    value: float


Point = tuple[datetime, float]


def period_of(when: datetime, seconds: int = STEP) -> datetime:
    """The start of the period of `seconds` containing `when` (UTC, epoch-aligned as Gnocchi's buckets are)."""
    epoch = int(when.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def after(points: list[Point], cursor: Cursor | None, before: datetime) -> list[Point]:
    """The points not captured yet: later than the cursor, and in a closed bucket (starting before `before`)."""
    return [(t, v) for t, v in points if (cursor is None or t > cursor.at) and t < before]


def intervals(points: list[Point], cursor: Cursor | None) -> Iterator[tuple[datetime, float, float]]:
    """(t1, delta, seconds) for each interval (t0, t1] of a cumulative counter, starting from the cursor's
    point; a counter that went down restarted, so the delta is v1."""
    prev = cursor
    for t, v in points:
        if prev is not None and t > prev.at:
            delta = v - prev.value if v >= prev.value else v
            yield t, delta, (t - prev.at).total_seconds()
        prev = Cursor(t, v)


def rates(points: list[Point], cursor: Cursor | None) -> Iterator[tuple[datetime, float]]:
    """(period, rate per second) of a cumulative counter, each in the 5-minute period containing t1."""
    for t1, delta, seconds in intervals(points, cursor):
        yield period_of(t1), delta / seconds


def cpu_util(points: list[Point], cursor: Cursor | None,
             vcpus_at: VcpuLookup) -> Iterator[tuple[datetime, float | None]]:
    """(period, utilisation %) from the cumulative `cpu` counter (ns); None where no vcpus count is known."""
    for t1, delta, seconds in intervals(points, cursor):
        vcpus = vcpus_at(t1)
        yield period_of(t1), (delta / (seconds * 1e9 * vcpus) * 100 if vcpus else None)


class VcpuLookup:
    """vcpus at a time: the `vcpus` point of that bucket, else the latest one before it, else the last one
    captured earlier (the cursor), else the first one after it (Ceilometer sends `vcpus` with nova's hourly
    audit notifications, so an instance's first cpu points may come before its first vcpus point)."""

    def __init__(self, points: list[Point], cursor: Cursor | None) -> None:
        self.times = [t for t, _v in points]
        self.values = [v for _t, v in points]
        self.cursor = cursor

    def __call__(self, when: datetime) -> float | None:
        i = bisect.bisect_right(self.times, when)
        if i:
            return self.values[i - 1]
        if self.cursor is not None and self.cursor.at <= when:
            return self.cursor.value
        return self.values[0] if self.values else None
