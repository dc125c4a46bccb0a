"""The VM metrics page of the web console in a real headless Chromium: `stackwatch serve` as a user starts
it, rollups in its store, the page draws one chart per metric from `/api/v1/metrics/vm/...`, and makes no
request off this machine."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from stackwatch.metrics.arithmetic import Cursor
from stackwatch.metrics.rollup import Batch, Instance, roll_up_pending
from stackwatch.metrics.rollup import write_batch as _write_only
from stackwatch.store.db import open_store
from tests.docs.test_api_docs_browser import CHROMIUM, _free_port, _offline_page

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the [test] extra")
if not Path(CHROMIUM).exists():  # pragma: no cover - .ci/run installs Debian's chromium
    pytest.skip(f"no Chromium at {CHROMIUM}", allow_module_level=True)


def test_vm_page_draws_a_chart_per_metric_offline(tmp_path):
    db = f"sqlite:///{tmp_path / 'sw.db'}"
    store = open_store(db)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    values = {}
    for h in range(3):
        for step in range(12):
            t = hour - timedelta(hours=h) + timedelta(minutes=5 * step)
            values[("vm-uuid-1", "cpu_util", t)] = 10.0 + step
            values[("vm-uuid-1", "memory_usage", t)] = 500.0 + h
    write_batch(store.engine, "lab", Batch([Instance("vm-uuid-1", "web-1", "h1", "p1", None)], values,
                                           {("vm-uuid-1", "cpu"): ("vm-uuid-1", Cursor(hour, 1.0))}), hour)
    store.dispose()
    config = tmp_path / "stackwatch.yaml"
    config.write_text(f"database: {db}\n")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKWATCH_")}
    proc = subprocess.Popen([sys.executable, "-m", "stackwatch", "serve", "--config", str(config), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    blocked: list[str] = []
    try:
        for _attempt in range(300):  # up to a minute for `serve` to answer
            assert proc.poll() is None, "serve exited"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        expected = httpx.get(f"{base}/api/v1/metrics/vm/web-1", params={"since": "24h"}).json()
        with playwright_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            try:
                context, page = _offline_page(browser, blocked)
                page.goto(f"{base}/vm-metrics?vm=web-1&granularity=hourly&since=24h", wait_until="load")
                page.wait_for_selector("svg[data-metric]", timeout=30_000)
                drawn = {s.get_attribute("data-metric"): int(s.get_attribute("data-points"))
                         for s in page.locator("svg[data-metric]").all()}
                page.goto(f"{base}/vm-metrics?vm=no-such-vm", wait_until="load")
                page.wait_for_function("document.getElementById('status').textContent.length > 0")
                empty = page.locator("#status").inner_text()
                context.close()
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(15)
    per_metric = {m: sum(1 for r in expected if r["metric"] == m) for m in {r["metric"] for r in expected}}
    assert drawn == per_metric == {"cpu_util": 3, "memory_usage": 3}
    assert "no metrics" in empty
    assert blocked == []


def write_batch(engine, provider, batch, seen_at):  # noqa: ANN001, ANN201
    """A batch stored and rolled up, as a capture cycle does (rollups once the cycle's batches are in)."""
    written = _write_only(engine, provider, batch, seen_at)
    roll_up_pending(engine, provider)
    return written
