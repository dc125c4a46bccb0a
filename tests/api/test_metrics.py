"""/metrics and /readyz: end to end through `stackwatch serve` with its catcher writing from child processes
(the default store writer on a multi-core machine): publish N notifications with oslo.messaging's Notifier,
plus malformed and repeated messages, and the counters move by exactly that much."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.amqp.conftest import AMQP_URL, Broker, broker, provider_config, wait_for  # noqa: F401 - broker fixture
from tests.amqp.test_faults import _stop as stop_process
from tests.api.conftest import PROJECTS, Secured
from tests.conftest import SAMPLES

oslo_messaging = pytest.importorskip("oslo_messaging")
cfg = pytest.importorskip("oslo_config.cfg")

COUNTERS = ("received", "stored", "duplicated", "quarantined")


def test_metrics_and_readyz_in_process(secured: Secured) -> None:
    assert secured.get(PROJECTS[0], "/metrics").status_code == 403
    assert secured.get(None, "/metrics").status_code == 401
    r = secured.get("admin", "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(r.text)}
    assert {"stackwatch_events_stored", "stackwatch_store_batch_seconds"} <= names
    ready = secured.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url: str, token: str, provider: str) -> dict[str, float]:
    r = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    r.raise_for_status()
    out = dict.fromkeys(COUNTERS, 0.0)
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            if sample.labels.get("provider") != provider:
                continue
            for name in COUNTERS:
                if sample.name == f"stackwatch_events_{name}_total":
                    out[name] += sample.value
            if sample.name == "stackwatch_monitor_lag_seconds":
                out["lag"] = sample.value
    return out


@pytest.mark.rabbitmq
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_counters_move_with_published_events(tmp_path, pg_database, broker) -> None:  # noqa: ANN001, F811
    tag = uuid.uuid4().hex[:8]
    exchange, queue, provider = f"apiauth-{tag}", f"apiauth-metrics-{tag}", f"apiauth{tag}"
    broker.exchanges.add(exchange)
    broker.queues.add(queue)
    port = _free_port()
    config = tmp_path / "stackwatch.yaml"
    config.write_text(yaml.safe_dump({
        "database": pg_database, "data_dir": str(tmp_path / "data"),
        "api": {"port": port, "auth": {"tokens": True}},
        "providers": [provider_config(provider, [exchange], queue)],
    }))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKWATCH_", "PROMETHEUS_"))}
    env.update(STACKWATCH_CONFIG=str(config), XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    cli = [sys.executable, "-m", "stackwatch"]
    token = subprocess.run([*cli, "token", "create", "--role", "admin"], env=env, capture_output=True, text=True,
                           check=True, timeout=120).stdout.strip()
    serve = subprocess.Popen([*cli, "serve"], env=env,
                             stdout=(tmp_path / "serve.out").open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    transport = None
    try:
        wait_for(lambda: _answers(url), 60, what="serve answering")
        wait_for(lambda: _queue_bound(broker, queue), 30, what="the catcher's queue")
        before = scrape(url, token, provider)
        conf = cfg.ConfigOpts()
        conf([], project="stackwatch-test", default_config_files=[], default_config_dirs=[])
        oslo_messaging.set_transport_defaults(control_exchange=exchange)
        transport = oslo_messaging.get_notification_transport(conf, url=AMQP_URL.replace("amqp://", "rabbit://", 1))
        notifier = oslo_messaging.Notifier(transport, publisher_id="compute.cmp-1", driver="messagingv2",
                                           topics=["notifications"])
        n = 25
        for i in range(n):
            notifier.info({"project_id": PROJECTS[0]}, "compute.instance.update", {"instance_id": f"vm-{i}"})
        broker.publish(exchange, "notifications.info", [b"not json", b'{"no": "envelope"}'])
        repeated = sorted((SAMPLES / "oslo_wire").glob("*.body.json"))[0].read_bytes()
        broker.publish(exchange, "notifications.info", [repeated, repeated])  # a redelivery: stored once
        wait_for(lambda: scrape(url, token, provider)["stored"] - before["stored"] >= n + 1, 60, what="stored")
        wait_for(lambda: scrape(url, token, provider)["quarantined"] - before["quarantined"] >= 2, 30,
                 what="2 quarantined")
        time.sleep(1.0)  # anything counted twice would show now
        after = scrape(url, token, provider)
        assert after["stored"] - before["stored"] == n + 1
        assert after["quarantined"] - before["quarantined"] == 2
        assert after["received"] - before["received"] == n + 4
        assert after["duplicated"] - before["duplicated"] == 1
        assert 0 <= after["lag"] < 120  # the events were just published
        ready = httpx.get(f"{url}/readyz", timeout=10).json()
        assert ready["ready"] and ready["monitors"][0]["provider"] == provider
    finally:
        if transport is not None:
            transport.cleanup()
        stop_process(serve)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _queue_bound(admin: Broker, queue: str) -> bool:
    try:
        admin.ready(queue)
        return True
    except Exception:  # noqa: BLE001 - not declared yet
        return False


def test_grafana_dashboard_uses_only_exposed_metrics(secured: Secured) -> None:
    """docs/grafana-dashboard.json: valid JSON whose every query names a metric /metrics serves."""
    import json
    import re
    from pathlib import Path

    from stackwatch import selfmetrics

    dashboard = json.loads((Path(__file__).parents[2] / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {re.sub(r"_(total|bucket)$", "", m) for e in exprs for m in re.findall(r"stackwatch_[a-z_]+", e)}
    body, _ = selfmetrics.exposition()
    served = {f.name for f in text_string_to_metric_families(body.decode())} | {"stackwatch_monitor_lag_seconds"}
    assert used and used <= served, used - served
