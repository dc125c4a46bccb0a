"""The product as an operator runs it: the issue's configuration, `stackwatch worker metrics` as a process
(killed with SIGKILL in the middle and started again), then `stackwatch metrics vm|host|project ... --format
json` and `/api/v1/metrics/...`, compared with rollups computed from the posted measures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import text

from stackwatch.api.app import create_app
from stackwatch.api.identity import Caller
from stackwatch.config.settings import load_settings
from stackwatch.store.db import open_store
from tests.metrics.conftest import provider_doc, stored_rows, wait_processed
from tests.metrics.expected import all_rollups, compare
from tests.metrics.seed import aligned_now, create_vms, post_measures, stamps_between

STACKWATCH = [sys.executable, "-m", "stackwatch"]


def _run(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*STACKWATCH, "-c", str(config), *args], capture_output=True, text=True, timeout=120)


def _vm_rows(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM metric_rollups WHERE scope = 'vm'")).scalar() or 0


@pytest.fixture
def pg_url(pg_database):
    import psycopg

    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return pg_database


def test_worker_killed_and_restarted_then_cli_and_api(gnocchi, pg_url, tmp_path):
    s = gnocchi.session()
    vms = create_vms(s, gnocchi.url, 6)
    now = aligned_now()
    stamps = stamps_between(now - timedelta(hours=24), now - timedelta(minutes=5))
    post_measures(s, gnocchi.url, vms, stamps, reset_at=now - timedelta(hours=3))
    wait_processed(gnocchi, vms)
    config = tmp_path / "stackwatch.yaml"
    # the shape: no cloud, basic auth; small batches so the kill lands between batches or inside one;
    # a backfill longer than the 24 h seeded, so the window does not move if a 5-minute boundary passes
    config.write_text(yaml.safe_dump({"database": pg_url, "providers": [
        provider_doc(gnocchi, interval_seconds=300, batch_size=1, backfill_hours=26)]}))
    store = open_store(pg_url)
    env = {**os.environ, "STACKWATCH_CONFIG": str(config)}
    try:
        worker = subprocess.Popen([*STACKWATCH, "worker", "metrics", "--provider", "lab"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while _vm_rows(store.engine) == 0 and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)  # a crash in the middle of the first cycle
        worker.wait(10)
        assert _vm_rows(store.engine) > 0
        worker = subprocess.Popen([*STACKWATCH, "worker", "metrics", "--provider", "lab"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        expected = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            expected = all_rollups(vms, now - timedelta(hours=25), now)
            if not compare(stored_rows(store.engine), expected):
                break
            time.sleep(0.5)
        worker.send_signal(signal.SIGTERM)  # a clean stop
        _out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err[-2000:]
        assert compare(stored_rows(store.engine), expected) == []
    finally:
        store.dispose()

    # the CLI, as the issue writes it
    vm = vms[1]
    done = _run(config, "metrics", "vm", vm.name, "--since", "24h", "--granularity", "hourly", "--format", "json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert {r["metric"] for r in listed} >= {"cpu_util", "memory_usage", "disk_read_rate", "disk_write_rate",
                                             "net_in_rate", "net_out_rate"}
    assert set(listed[0]) == {"metric", "timestamp", "granularity_seconds", "avg", "max", "unit"}
    units = {r["metric"]: r["unit"] for r in listed}
    assert units["cpu_util"] == "%" and units["memory_usage"] == "MB" and units["net_in_rate"] == "B/s"
    cutoff = datetime.now(UTC) - timedelta(hours=24)
    want = {(m, p.replace(tzinfo=UTC)): v for (scope, ref, m, g, p), v in expected.items()
            if scope == "vm" and ref == vm.id and g == 3600 and p.replace(tzinfo=UTC) >= cutoff}
    got = {(r["metric"], datetime.fromisoformat(r["timestamp"])): (r["avg"], r["max"]) for r in listed}
    assert got.keys() == want.keys()
    assert all(r["granularity_seconds"] == 3600 for r in listed)
    assert all(abs(got[k][0] - want[k][0]) <= 1e-9 * max(1, abs(want[k][0])) for k in want)

    host = _run(config, "metrics", "host", vm.host, "--granularity", "daily", "--format", "json")
    assert host.returncode == 0 and json.loads(host.stdout)
    table = _run(config, "metrics", "project", vm.project, "--granularity", "5m", "--since", "1h")
    assert table.returncode == 0 and "cpu_util" in table.stdout
    bad = _run(config, "metrics", "vm", vm.name, "--granularity", "weekly")
    assert bad.returncode == 2 and "granularity must be one of" in bad.stderr

    # the API, with the caller's scope
    os.environ["STACKWATCH_CONFIG"] = str(config)
    try:
        api_store = open_store(pg_url)
        app = create_app(load_settings(), api_store)
        client = TestClient(app)
        r = client.get(f"/api/v1/metrics/vm/{vm.id}", params={"since": "24h", "granularity": "hourly"})
        assert r.status_code == 200 and r.json() == listed
        assert client.get(f"/api/v1/metrics/host/{vm.host}").status_code == 200
        assert client.get(f"/api/v1/metrics/vm/{vm.id}", params={"granularity": "x"}).status_code == 422
        other = next(v for v in vms if v.project != vm.project)

        def member(_request):  # noqa: ANN001, ANN202 - an authenticator: a viewer of vm's project
            return Caller(name="u1", role="viewer", project_id=vm.project)

        app.state.authenticator = member
        assert client.get(f"/api/v1/metrics/vm/{vm.name}").status_code == 200
        assert client.get(f"/api/v1/metrics/vm/{other.id}").status_code == 404
        assert client.get(f"/api/v1/metrics/project/{vm.project}").status_code == 200
        assert client.get(f"/api/v1/metrics/project/{other.project}").status_code == 404
        assert client.get(f"/api/v1/metrics/host/{vm.host}").status_code == 403
        api_store.dispose()
    finally:
        os.environ.pop("STACKWATCH_CONFIG", None)
