"""Expected rollups computed from the raw measures a test posted, written from issue 17's rules and nothing
else (no stackwatch code): counter rates per interval (t0, t1] in the period containing t1, a reset's delta
is v1, cpu_util from ns and vcpus, disks and NICs summed, host/project cpu_util averaged over instances and
everything else summed, hourly/daily avg and max over the 5-minute values of the period."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from tests.metrics.seed import Vm

GAUGES = {"vcpus": "vcpus", "memory": "memory", "memory.usage": "memory_usage", "disk.root.size": "disk_root_size"}
RATES = {"disk.device.read.bytes": "disk_read_rate", "disk.device.write.bytes": "disk_write_rate",
         "network.incoming.bytes": "net_in_rate", "network.outgoing.bytes": "net_out_rate"}


def _floor(t: datetime, seconds: int) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=t.tzinfo)
    return t - timedelta(seconds=(t - epoch).total_seconds() % seconds)


def _intervals(points):
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        delta = v1 - v0 if v1 >= v0 else v1
        yield t1, delta, (t1 - t0).total_seconds()


def vm_five_minute(vm: Vm, start: datetime, until: datetime) -> dict[tuple[str, datetime], float]:
    """{(metric, period): value} for one VM from the points posted in [start, until)."""
    out: dict[tuple[str, datetime], float] = defaultdict(float)
    window = {key: [(t, v) for t, v in pts if start <= t < until] for key, pts in vm.posted.items()}
    vcpus = dict(window.get((vm.id, "vcpus"), []))
    for (_rid, metric), points in window.items():
        if metric in GAUGES:
            for t, v in points:
                out[(GAUGES[metric], _floor(t, 300))] = v
        elif metric == "cpu":
            for t1, delta, seconds in _intervals(points):
                # vcpus posted with the point, else the flavor's (sent only in nova's audit notification)
                out[("cpu_util", _floor(t1, 300))] = delta / (seconds * 1e9 * vcpus.get(t1, vm.vcpus)) * 100
        else:
            for t1, delta, seconds in _intervals(points):
                out[(RATES[metric], _floor(t1, 300))] += delta / seconds
    return dict(out)


def all_rollups(vms: list[Vm], start: datetime, until: datetime) -> dict[tuple, tuple[float, float]]:
    """{(scope, ref, metric, granularity, naive period start): (avg, max)} for every scope and granularity."""
    five: dict[tuple[str, str, str, datetime], float] = {}
    per_host: dict[tuple[str, str, str, datetime], list[float]] = defaultdict(list)
    for vm in vms:
        for (metric, period), value in vm_five_minute(vm, start, until).items():
            five[("vm", vm.id, metric, period)] = value
            per_host[("host", vm.host, metric, period)].append(value)
            per_host[("project", vm.project, metric, period)].append(value)
    for key, values in per_host.items():
        five[key] = sum(values) / len(values) if key[2] == "cpu_util" else sum(values)
    out: dict[tuple, tuple[float, float]] = {}
    buckets: dict[tuple, list[float]] = defaultdict(list)
    for (scope, ref, metric, period), value in five.items():
        naive = period.replace(tzinfo=None)
        out[(scope, ref, metric, 300, naive)] = (value, value)
        for seconds in (3600, 86400):
            buckets[(scope, ref, metric, seconds, _floor(period, seconds).replace(tzinfo=None))].append(value)
    for key, values in buckets.items():
        out[key] = (sum(values) / len(values), max(values))
    return out


def compare(stored: dict, expected: dict, rel: float = 1e-9) -> list[str]:
    """Differences between two row sets, as readable lines (empty: equal within float rounding)."""
    problems = [f"missing {k}" for k in sorted(expected.keys() - stored.keys(), key=str)[:10]]
    problems += [f"unexpected {k}" for k in sorted(stored.keys() - expected.keys(), key=str)[:10]]
    for key in expected.keys() & stored.keys():
        for name, want, got in zip(("avg", "max"), expected[key], stored[key], strict=True):
            if abs(want - got) > rel * max(1.0, abs(want)):
                problems.append(f"{key} {name}: expected {want!r}, stored {got!r}")
    return problems[:30]
