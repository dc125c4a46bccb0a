"""Fixtures of the metrics tests: a real Gnocchi per test (fresh database, storage and Redis db), a provider
configured for it with basic auth, and helpers to wait for metricd and read what stackwatch stored."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.metrics.gnocchi_peer import GnocchiPeer
from tests.metrics.seed import ensure_schema


@pytest.fixture
def gnocchi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GnocchiPeer]:
    peer = GnocchiPeer(tmp_path_factory.mktemp("gnocchi"))
    try:
        peer.setup().start()
        ensure_schema(peer.session(), peer.url)
        yield peer
    finally:
        peer.teardown()


def wait_processed(peer: GnocchiPeer, vms: list, timeout: float = 120) -> None:
    """Until metricd has made every posted point readable: every series of every resource of `vms` ends at
    the last timestamp posted (GET /v1/status says 0 measures left while metricd still writes the last ones)."""
    from tests.metrics.seed import DISK_METRICS, INSTANCE_METRICS, NIC_METRICS

    last = max(points[-1][0] for vm in vms for points in vm.posted.values()).isoformat()
    first = min(points[0][0] for vm in vms for points in vm.posted.values()).isoformat()
    kinds = (("instance", INSTANCE_METRICS, "id", 1), ("instance_disk", DISK_METRICS, "instance_id", "disks"),
             ("instance_network_interface", NIC_METRICS, "instance_id", "nics"))
    s = peer.session()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = True
        for rtype, metrics, key, per_vm in kinds:
            ops = "(metric " + " ".join(f"({m} mean)" for m in metrics) + ")"
            r = s.post(peer.url + "/v1/aggregates", params={"granularity": 300, "start": first, "details": "false"},
                       json={"operations": ops, "resource_type": rtype, "search": {"in": {key: [v.id for v in vms]}}})
            r.raise_for_status()
            measures = r.json()["measures"]
            resources = sum(1 if per_vm == 1 else len(getattr(vm, per_vm)) for vm in vms)
            ready &= len(measures) == resources and all(
                per_metric.get(m, {}).get("mean") and per_metric[m]["mean"][-1][0] == last
                for per_metric in measures.values() for m in metrics)
        if ready:
            return
        time.sleep(0.3)
    raise AssertionError(f"metricd left measures unprocessed after {timeout} s")


def provider_doc(peer: GnocchiPeer, name: str = "lab", **metrics) -> dict:
    """The issue's configuration shape, with basic auth and no cloud."""
    return {"name": name, "metrics": {"gnocchi": {"endpoint": peer.url, "auth": "basic", "username": "admin"},
                                      **metrics}}


def stored_rows(engine, provider: str = "lab") -> dict[tuple, tuple[float, float]]:
    """{(scope, ref, metric, granularity, period_start): (avg, max)} of everything stored for `provider`."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT scope, ref, metric, granularity, period_start, avg, max FROM metric_rollups WHERE provider = :p"),
            {"p": provider})
        out = {}
        for r in rows:
            start = r.period_start
            if isinstance(start, str):
                from datetime import datetime

                start = datetime.fromisoformat(start)
            start = start.replace(tzinfo=None)
            out[(r.scope, r.ref, r.metric, r.granularity, start)] = (r.avg, r.max)
        return out

