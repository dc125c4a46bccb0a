"""Seed a Gnocchi the way Ceilometer 27's `gnocchi://` publisher leaves it: its archive policies, the
`instance` / `instance_disk` / `instance_network_interface` resource types (final schema after
ceilometer-upgrade), resources with Ceilometer-shaped ids, and measures posted in batches through
`POST /v1/batch/resources/metrics/measures` (the call the publisher makes).

The schema and archive policies are Ceilometer 27's (`ceilometer/gnocchi_client.py`,
`publisher/data/gnocchi_resources.yaml`, Apache-2.0), as ../shared/reference/gnocchi/RECIPE.md lists them.
Series are deterministic functions of the point index so a test can compute expected values by itself.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import requests

POLICIES = [
    {"name": "ceilometer-low", "aggregation_methods": ["mean"], "back_window": 0,
     "definition": [{"granularity": "5 minutes", "timespan": "30 days"}]},
    {"name": "ceilometer-low-rate", "aggregation_methods": ["mean", "rate:mean"], "back_window": 0,
     "definition": [{"granularity": "5 minutes", "timespan": "30 days"}]},
]
S255 = {"type": "string", "min_length": 0, "max_length": 255}
RESOURCE_TYPES = {
    "instance": {
        "flavor_id": dict(S255, required=True), "image_ref": dict(S255, required=False),
        "host": dict(S255, required=False), "display_name": dict(S255, required=True),
        "server_group": dict(S255, required=False), "flavor_name": dict(S255, required=True),
        "launched_at": {"type": "datetime", "required": False},
        "created_at": {"type": "datetime", "required": False},
        "deleted_at": {"type": "datetime", "required": False},
        "availability_zone": dict(S255, required=False),
    },
    "instance_disk": {"name": dict(S255, required=True), "instance_id": {"type": "uuid", "required": True}},
    "instance_network_interface": {"name": dict(S255, required=True),
                                   "instance_id": {"type": "uuid", "required": True}},
}
INSTANCE_METRICS = {"cpu": "ceilometer-low-rate", "vcpus": "ceilometer-low", "memory": "ceilometer-low",
                    "memory.usage": "ceilometer-low", "disk.root.size": "ceilometer-low"}
NIC_METRICS = {"network.incoming.bytes": "ceilometer-low-rate", "network.outgoing.bytes": "ceilometer-low-rate"}
DISK_METRICS = {"disk.device.read.bytes": "ceilometer-low-rate", "disk.device.write.bytes": "ceilometer-low-rate"}
STEP = 300


def ensure_schema(s: requests.Session, url: str) -> None:
    for policy in POLICIES:
        r = s.post(url + "/v1/archive_policy", data=json.dumps(policy))
        assert r.status_code in (201, 409), r.text
    for name, attrs in RESOURCE_TYPES.items():
        if s.get(url + "/v1/resource_type/" + name).status_code == 404:
            r = s.post(url + "/v1/resource_type", data=json.dumps({"name": name, "attributes": attrs}))
            assert r.status_code == 201, r.text


def stamps_between(first: datetime, last: datetime) -> list[datetime]:
    """Every 5-minute timestamp from `first` to `last`, both included."""
    return [first + timedelta(seconds=STEP * i) for i in range(int((last - first).total_seconds() // STEP) + 1)]


def aligned_now() -> datetime:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(minutes=now.minute % 5)


@dataclass
class Vm:
    """One seeded instance: its ids, attribution, and the raw measures posted for it (metric -> [(t, v)]),
    per device for disks and NICs, so tests compute expected values from exactly what was posted."""

    id: str
    name: str
    host: str
    project: str
    vcpus: int
    disks: dict[str, str] = field(default_factory=dict)  # original resource id -> device name
    nics: dict[str, str] = field(default_factory=dict)
    posted: dict[tuple[str, str], list[tuple[datetime, float]]] = field(default_factory=dict)


def create_vms(s: requests.Session, url: str, count: int, *, disks: int = 2, nics: int = 1,
               hosts: tuple[str, ...] = ("compute-1", "compute-2"),
               projects: tuple[str, ...] = ("0d7f1a9c5e6b4c1f8a3e2b7c9d0e1f23", "5b1e2c3d4f5a6b7c8d9e0f1a2b3c4d5e"),
               started: datetime | None = None, prefix: str = "vm") -> list[Vm]:
    started = started or aligned_now() - timedelta(days=2)
    vms = []
    for i in range(count):
        vm = Vm(str(uuid.uuid4()), f"{prefix}-{i}", hosts[i % len(hosts)], projects[(i // 2) % len(projects)],
                vcpus=1 + i % 3)
        body = {"id": vm.id, "project_id": vm.project, "user_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
                "flavor_id": "2", "flavor_name": "m1.small", "host": vm.host, "display_name": vm.name,
                "availability_zone": "nova", "started_at": started.isoformat(),
                "metrics": {m: {"archive_policy_name": ap} for m, ap in INSTANCE_METRICS.items()}}
        r = s.post(url + "/v1/resource/instance", data=json.dumps(body))
        assert r.status_code == 201, r.text
        for d in range(disks):
            dev = "vd" + "abcdefgh"[d]
            rid = f"{vm.id}-{dev}"
            r = s.post(url + "/v1/resource/instance_disk", data=json.dumps(
                {"id": rid, "project_id": vm.project, "name": dev, "instance_id": vm.id,
                 "metrics": {m: {"archive_policy_name": ap} for m, ap in DISK_METRICS.items()}}))
            assert r.status_code == 201, r.text
            vm.disks[rid] = dev
        for _n in range(nics):
            port = str(uuid.uuid4())
            rid = f"instance-{i + 1:08x}-{vm.id}-tap{port[:11]}"
            r = s.post(url + "/v1/resource/instance_network_interface", data=json.dumps(
                {"id": rid, "project_id": vm.project, "name": "tap" + port[:11], "instance_id": vm.id,
                 "metrics": {m: {"archive_policy_name": ap} for m, ap in NIC_METRICS.items()}}))
            assert r.status_code == 201, r.text
            vm.nics[rid] = "tap" + port[:11]
        vms.append(vm)
    return vms


def series_value(metric: str, k: int, dev: int, n: int, vcpus: int, reset_at: int | None) -> float:
    """Value number `n` of a series: gauges wobble, counters grow (and restart from a small value after
    `reset_at`, as a rebooted guest's counters do)."""
    if metric == "vcpus":
        return float(vcpus)
    if metric == "memory":
        return 2048.0
    if metric == "disk.root.size":
        return 20.0
    if metric == "memory.usage":
        return 500.0 + 10 * k + (n * 7) % 13
    a, b = {"cpu": (300e9 * vcpus * (0.1 + 0.05 * k), 300e9 * vcpus * 0.01),
            "disk.device.read.bytes": (1000.0 * (1 + dev), 700.0),
            "disk.device.write.bytes": (500.0 * (1 + dev) + 3 * k, 11.0),
            "network.incoming.bytes": (20000.0 + 100 * k, 17.0),
            "network.outgoing.bytes": (9000.0 + 50 * k, 0.0)}[metric]
    if reset_at is not None and n >= reset_at:  # the counter restarts near zero
        return _cumulative(a, b, n - reset_at) * 0.5
    return _cumulative(a, b, n) + 1e6 * (k + 1)


def _cumulative(a: float, b: float, n: int) -> float:
    """Sum over j = 0..n of the increments a + b * (j % 5) (a growing counter with a wobbling rate)."""
    q, r = divmod(n + 1, 5)
    return a * (n + 1) + b * (10 * q + r * (r - 1) // 2)


def post_measures(s: requests.Session, url: str, vms: list[Vm], stamps: list[datetime],
                  reset_at: datetime | None = None, base: datetime | None = None) -> None:
    """Post one point per stamp for every metric of every VM, in one batch request per 20 VMs.

    Point n of a series is at `base + n * 5 min` (`base`: the first stamp of the whole seeding, so a test
    that posts the series in parts gets the same values as one that posts it whole)."""
    base = base or stamps[0]
    reset_n = None if reset_at is None else int((reset_at - base).total_seconds() // STEP)
    for start in range(0, len(vms), 20):
        batch: dict[str, dict[str, list[dict]]] = {}
        for k, vm in enumerate(vms[start:start + 20], start=start):
            per_resource = {vm.id: [(m, 0) for m in INSTANCE_METRICS]}
            for d, rid in enumerate(vm.disks):
                per_resource[rid] = [(m, d) for m in DISK_METRICS]
            for d, rid in enumerate(vm.nics):
                per_resource[rid] = [(m, d) for m in NIC_METRICS]
            for rid, metrics in per_resource.items():
                for metric, dev in metrics:
                    points = []
                    for ts in stamps:
                        n = int((ts - base).total_seconds() // STEP)
                        value = series_value(metric, k, dev, n, vm.vcpus, reset_n)
                        points.append({"timestamp": ts.isoformat(), "value": value})
                        vm.posted.setdefault((rid, metric), []).append((ts, value))
                    batch.setdefault(rid, {})[metric] = points
        r = s.post(url + "/v1/batch/resources/metrics/measures", data=json.dumps(batch))
        assert r.status_code == 202, r.text


def wait_processed(peer, vms: list, timeout: float = 120) -> None:
    """Until metricd has made every posted point readable: every series of every resource of `vms` ends at
    the last timestamp posted (GET /v1/status says 0 measures left while metricd still writes the last ones)."""
    last = max(points[-1][0] for vm in vms for points in vm.posted.values()).isoformat()
    first = min(points[0][0] for vm in vms for points in vm.posted.values()).isoformat()
    kinds = (("instance", INSTANCE_METRICS, "id", 1), ("instance_disk", DISK_METRICS, "instance_id", "disks"),
             ("instance_network_interface", NIC_METRICS, "instance_id", "nics"))
    s = peer.session()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = True
        for rtype, all_metrics, key, per_vm in kinds:
            metrics = [m for m in all_metrics if any(m == name for vm in vms for _rid, name in vm.posted)]
            ops = "(metric " + " ".join(f"({m} mean)" for m in metrics) + ")"
            r = s.post(peer.url + "/v1/aggregates", params={"granularity": 300, "start": first, "details": "false"},
                       json={"operations": ops, "resource_type": rtype, "search": {"in": {key: [v.id for v in vms]}}})
            r.raise_for_status()
            measures = r.json()["measures"]
            resources = sum(1 if per_vm == 1 else len(getattr(vm, per_vm)) for vm in vms)
            ready &= len(measures) == resources and all(
                per_metric.get(m, {}).get("mean") and per_metric[m]["mean"][-1][0] >= last
                for per_metric in measures.values() for m in metrics)
        if ready:
            return
        time.sleep(0.3)
    raise AssertionError(f"metricd left measures unprocessed after {timeout} s")
