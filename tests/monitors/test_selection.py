"""`auto` prefers amqp, then ceilometer-http (when configured), then panko, then http; every verdict is explained."""

from __future__ import annotations

from stackwatch.events.monitors.registry import explain, load_monitors, select
from tests.monitors.conftest import provider

PANKO = {"endpoint": "http://127.0.0.1:1"}
HTTP = {"url": "http://127.0.0.1:2/events"}


def test_auto_priority_order():
    monitors = load_monitors()
    assert {"panko", "http", "ceilometer-http", "amqp"} <= set(monitors)
    assert select(provider(http=HTTP), monitors).name == "http"
    assert select(provider(http=HTTP, panko=PANKO), monitors).name == "panko"
    both = provider(http=HTTP, panko=PANKO, ceilometer_http={})
    assert select(both, monitors).name == "ceilometer-http"
    assert select(provider(http=HTTP, panko=PANKO, ceilometer_http={}, amqp={}), monitors).name == "amqp"


def test_explanations_say_why():
    monitors = load_monitors()
    sel = select(provider(panko=PANKO), monitors)
    rows = {name: why for name, _prio, why in explain(sel, monitors)}
    assert rows["panko"].startswith("selected (auto")
    assert "no events.ceilometer_http section" in rows["ceilometer-http"]
    assert "no events.http section" in rows["http"]
    assert "no events.amqp section" in rows["amqp"]


def test_misconfigured_http_section_is_refused_by_auto():
    import pytest

    from stackwatch.events.monitors.registry import MonitorSelectionError

    with pytest.raises(MonitorSelectionError, match="events.http: .*url: must start with http"):
        select(provider(http={"url": "ftp://x"}), load_monitors())


def test_provider_check_cli_explains(tmp_path):
    import subprocess
    import sys

    import yaml

    cfg = tmp_path / "sw.yaml"
    cfg.write_text(yaml.safe_dump({"database": f"sqlite:///{tmp_path / 'x.db'}", "providers": [{
        "name": "lab", "events": {"panko": {"endpoint": "http://127.0.0.1:1", "auth": "none"}, "http": HTTP}}]}))
    out = subprocess.run([sys.executable, "-m", "stackwatch", "-c", str(cfg), "provider", "check", "lab"],
                         capture_output=True, text=True, timeout=120, env={"COLUMNS": "200", "PATH": "/usr/bin"})
    assert "auto -> panko" in out.stdout
    assert "available but lower priority than panko" in out.stdout
    assert "no events.ceilometer_http section" in out.stdout
    assert "probe: failed" in out.stdout and "ConnectFailure" in out.stdout
