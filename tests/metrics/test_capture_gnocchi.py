"""Capture against a real Gnocchi: rollups equal to those computed from the raw measures posted (counter
reset included), a capture stopped in the middle resumes with no gap and no duplicate, and a Gnocchi that
went away is caught up when it is back."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from stackwatch.backoff import Backoff
from stackwatch.config.settings import ProviderConfig
from stackwatch.metrics.capture import Capture
from stackwatch.metrics.loop import MetricsLoop
from stackwatch.store.db import open_store
from tests.metrics.conftest import provider_doc, stored_rows, wait_processed
from tests.metrics.expected import all_rollups, compare
from tests.metrics.seed import aligned_now, create_vms, post_measures, stamps_between


@pytest.fixture
def metrics_store(db_url):
    store = open_store(db_url)
    yield store
    store.dispose()


def test_rollups_equal_independent_aggregates_with_a_counter_reset(gnocchi, metrics_store):
    """25 h of 5-minute measures for 5 VMs on 2 hosts and 2 projects (2 disks and a NIC each): the first
    capture backfills 24 h, and every stored row (vm, host, project x 5 min, hour, day) equals what the
    issue's arithmetic gives from the posted measures, across a counter reset 6 h ago."""
    s = gnocchi.session()
    vms = create_vms(s, gnocchi.url, 5)
    now = aligned_now()
    stamps = stamps_between(now - timedelta(hours=25), now - timedelta(minutes=5))
    post_measures(s, gnocchi.url, vms, stamps, reset_at=now - timedelta(hours=6))
    wait_processed(gnocchi, vms)
    provider = ProviderConfig.model_validate(provider_doc(gnocchi))
    capture = Capture(provider, metrics_store.engine)
    report = capture.cycle()
    assert report.instances == 5 and report.no_vcpus == 0
    assert report.requests == 4  # one search + 3 aggregates for the one batch: never a request per metric
    expected = all_rollups(vms, report.until - timedelta(hours=24), report.until)
    stored = stored_rows(metrics_store.engine)
    assert compare(stored, expected) == []
    # the reset is really in the data: a raw delta went negative there, and the stored rate stayed positive
    cpu = vms[0].posted[(vms[0].id, "cpu")]
    assert any(b[1] < a[1] for a, b in zip(cpu, cpu[1:], strict=False))
    assert min(v[0] for k, v in stored.items() if k[2] in ("cpu_util", "disk_read_rate")) > 0
    # a second cycle with nothing new stores nothing more
    again = capture.cycle()
    assert again.points == 0 and stored_rows(metrics_store.engine) == stored


class _StopAfter(threading.Event):
    """The stop signal of a capture, raised after `n` batches (a restart in the middle of a cycle)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n

    def is_set(self) -> bool:
        self.left -= 1
        return self.left < 0


def test_restart_in_the_middle_no_gap_no_duplicate(gnocchi, metrics_store):
    s = gnocchi.session()
    vms = create_vms(s, gnocchi.url, 6)
    now = aligned_now()
    first = now - timedelta(hours=3)
    stamps = stamps_between(first, now - timedelta(minutes=5))
    half = len(stamps) // 2
    post_measures(s, gnocchi.url, vms, stamps[:half], base=first)
    wait_processed(gnocchi, vms)
    provider = ProviderConfig.model_validate(provider_doc(gnocchi, batch_size=2))
    Capture(provider, metrics_store.engine).cycle()
    post_measures(s, gnocchi.url, vms, stamps[half:], base=first)
    wait_processed(gnocchi, vms)
    partial = Capture(provider, metrics_store.engine).cycle(_StopAfter(1))
    assert partial.stopped and partial.batches == 1
    final = Capture(provider, metrics_store.engine).cycle()  # a new process: state from the database only
    assert final.batches == 3 and final.points > 0
    expected = all_rollups(vms, final.until - timedelta(hours=24), final.until)
    assert compare(stored_rows(metrics_store.engine), expected) == []
    with metrics_store.engine.connect() as conn:
        dupes = conn.execute(text(
            "SELECT COUNT(*) FROM (SELECT scope, ref, metric, granularity, period_start FROM metric_rollups "
            "GROUP BY scope, ref, metric, granularity, period_start HAVING COUNT(*) > 1) d")).scalar()
    assert dupes == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_gnocchi_down_then_back_is_caught_up(gnocchi, metrics_store):
    """The loop keeps failing (and backing off) while Gnocchi's API is down; when it is back, the measures
    posted meanwhile (a Ceilometer backlog) are all captured, exactly."""
    s = gnocchi.session()
    vms = create_vms(s, gnocchi.url, 3)
    now = aligned_now()
    first = now - timedelta(hours=2)
    stamps = stamps_between(first, now - timedelta(minutes=5))
    post_measures(s, gnocchi.url, vms, stamps[:12], base=first)
    wait_processed(gnocchi, vms)
    provider = ProviderConfig.model_validate(provider_doc(gnocchi, interval_seconds=1))
    loop = MetricsLoop(provider, metrics_store.engine, backoff=Backoff(0.2, 1.0)).start()
    try:
        _until(lambda: loop.cycles >= 1, 60)
        before = stored_rows(metrics_store.engine)
        gnocchi.stop_api()
        failures = loop.failures
        _until(lambda: loop.failures >= failures + 2, 60)
        assert stored_rows(metrics_store.engine) == before
        gnocchi.start_api()
        post_measures(gnocchi.session(), gnocchi.url, vms, stamps[12:], base=first)
        wait_processed(gnocchi, vms)
        expected = all_rollups(vms, first, now + timedelta(days=1))
        _until(lambda: not compare(stored_rows(metrics_store.engine), expected), 60)
    finally:
        loop.stop()
    assert compare(stored_rows(metrics_store.engine), expected) == []
    assert "HTTP" in (loop.last_error or "") or "Connect" in (loop.last_error or "")


def _until(check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout} s")
