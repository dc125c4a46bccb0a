"""Without Gnocchi: configuration errors, retention per granularity, rollups recomputed in place, lookups by
name of an instance that has ended (its history stays), on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from stackwatch.config.metrics import MetricsRetention
from stackwatch.config.settings import ConfigError, Settings, load_settings
from stackwatch.metrics.arithmetic import Cursor
from stackwatch.metrics.models import MetricRollupRow
from stackwatch.metrics.query import MetricsQueryError, granularity_seconds, resolve_instance, rows, since_time
from stackwatch.metrics.retention import purge
from stackwatch.metrics.rollup import Batch, Instance, roll_up_pending
from stackwatch.metrics.rollup import write_batch as _write_only

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_the_issue_configuration_shape_loads(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text('providers:\n  - name: lab\n    cloud: lab\n    metrics:\n'
                    '      gnocchi: {endpoint: "http://127.0.0.1:8041", auth: basic, username: admin}\n'
                    '      interval_seconds: 300\n')
    metrics = load_settings(path).providers[0].metrics
    assert metrics.gnocchi.auth == "basic" and metrics.interval_seconds == 300
    assert metrics.retention == MetricsRetention(five_minute_days=7, hourly_days=90, daily_days=730)


@pytest.mark.parametrize(("metrics", "message"), [
    ({}, "needs the provider's cloud"),
    ({"gnocchi": {"auth": "basic"}}, "auth: basic needs endpoint"),
    ({"gnocchi": {"auth": "token"}}, "providers.0.metrics.gnocchi.auth"),
    ({"interval_seconds": 0}, "providers.0.metrics.interval_seconds"),
])
def test_bad_metrics_sections_are_refused_with_the_key(tmp_path, metrics, message):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"providers": [{"name": "lab", "metrics": metrics}]}))
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    assert message in str(refused.value)


def test_basic_auth_password_never_shows_in_the_settings_repr():
    s = Settings.model_validate({"providers": [{"name": "lab", "metrics": {"gnocchi": {
        "endpoint": "http://g", "auth": "basic", "password": "s3cr3t-pw"}}}]})
    assert "s3cr3t-pw" not in repr(s)


def _batch(values: dict, host: str = "h1", project: str = "p1", name: str = "vm-a",
           ended: datetime | None = None) -> Batch:
    vm = next(iter(values))[0]
    return Batch([Instance(vm, name, host, project, ended)], values,
                 {(vm, "cpu"): (vm, Cursor(max(p for _v, _m, p in values), 1.0))})


def _count(engine, granularity: int) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(MetricRollupRow).where(
            MetricRollupRow.granularity == granularity)).scalar()


def test_retention_per_granularity(store):
    engine = store.engine
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    old = now - timedelta(days=10)
    write_batch(engine, "lab", _batch({("vm1", "cpu_util", old): 10.0, ("vm1", "cpu_util", now): 20.0}), now)
    assert _count(engine, 300) == 2 * 3  # vm, host, project
    deleted = purge(engine, "lab", MetricsRetention())
    assert deleted[300] == 3 and deleted[3600] == 0 and deleted[86400] == 0
    assert _count(engine, 300) == 3 and _count(engine, 3600) == 6 and _count(engine, 86400) == 6
    deleted = purge(engine, "lab", MetricsRetention(), now=now + timedelta(days=95))
    assert deleted[300] == 3 and deleted[3600] == 6 and _count(engine, 86400) == 6


def test_period_in_progress_is_updated_in_place_and_summed_metrics_add_up(store):
    engine = store.engine
    write_batch(engine, "lab", _batch({("vm1", "cpu_util", T0): 10.0, ("vm1", "disk_read_rate", T0): 100.0}), T0)
    write_batch(engine, "lab", _batch({("vm2", "cpu_util", T0): 30.0}, name="vm-b"), T0)
    # a second disk of vm1 reported late for the same period: its rate adds to the first one's
    write_batch(engine, "lab", _batch({("vm1", "disk_read_rate", T0): 50.0,
                                       ("vm1", "cpu_util", T0 + timedelta(minutes=5)): 40.0}), T0)
    since = T0 - timedelta(hours=1)
    assert [(r["avg"], r["max"]) for r in rows(engine, "vm", "vm1", 300, since, metrics=["disk_read_rate"])] == [
        (150.0, 150.0)]
    hourly = {r["metric"]: (r["avg"], r["max"]) for r in rows(engine, "vm", "vm1", 3600, since)}
    assert hourly["cpu_util"] == (25.0, 40.0)  # (10 + 40) / 2, max 40: the hour in progress, updated in place
    host = {(r["metric"], r["timestamp"]): r["avg"] for r in rows(engine, "host", "h1", 300, since)}
    assert host[("cpu_util", T0.isoformat())] == 20.0  # mean of vm1 (10) and vm2 (30)
    assert host[("disk_read_rate", T0.isoformat())] == 150.0  # sum
    write_batch(engine, "lab", _batch({("vm1", "cpu_util", T0 + timedelta(hours=1)): 90.0}), T0)
    daily = rows(engine, "project", "p1", 86400, T0 - timedelta(days=1), metrics=["cpu_util"])
    # the day's 5-minute project values are 20, 40 (hour 10) and 90 (hour 11): the daily avg is their
    # count-weighted mean 50, not the mean of the hour means (30 + 90) / 2 = 60
    assert [(r["avg"], r["max"], r["timestamp"]) for r in daily] == [(50.0, 90.0, "2026-12-01T00:00:00+00:00")]


def test_an_ended_instance_keeps_its_history_and_its_name(store):
    engine = store.engine
    write_batch(engine, "lab", _batch({("vm9", "memory_usage", T0): 512.0}, name="web-1", ended=T0), T0)
    assert resolve_instance(engine, "web-1") == ("vm9", "p1")
    assert rows(engine, "vm", "vm9", 300, T0)[0]["unit"] == "MB"
    write_batch(engine, "other", _batch({("vm8", "memory_usage", T0): 1.0}, name="web-1"), T0)
    with pytest.raises(MetricsQueryError, match="names 2 instances"):
        resolve_instance(engine, "web-1")
    assert resolve_instance(engine, "web-1", provider="other")[0] == "vm8"


def test_query_parameters():
    assert granularity_seconds("5m") == 300 and granularity_seconds("daily") == 86400
    with pytest.raises(MetricsQueryError):
        granularity_seconds("weekly")
    now = datetime(2026, 12, 7, tzinfo=UTC)
    assert since_time("24h", now) == now - timedelta(hours=24)
    assert since_time("2026-12-01T00:00:00Z") == datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(MetricsQueryError):
        since_time("yesterday")


def write_batch(engine, provider, batch, seen_at):  # noqa: ANN001, ANN201
    """A batch stored and rolled up, as a capture cycle does (rollups once the cycle's batches are in)."""
    written = _write_only(engine, provider, batch, seen_at)
    roll_up_pending(engine, provider)
    return written


def test_rollups_left_pending_by_a_stopped_cycle_are_done_by_the_next(store):
    engine = store.engine
    _write_only(engine, "lab", _batch({("vm1", "cpu_util", T0): 10.0}), T0)  # stopped before the rollup
    assert rows(engine, "host", "h1", 300, T0) == [] and rows(engine, "vm", "vm1", 3600, T0 - timedelta(hours=1)) == []
    _write_only(engine, "lab", _batch({("vm2", "cpu_util", T0 + timedelta(hours=2)): 30.0}, name="b"), T0)
    assert roll_up_pending(engine, "lab") == (T0, T0 + timedelta(hours=2))
    assert [r["avg"] for r in rows(engine, "host", "h1", 300, T0)] == [10.0, 30.0]
    assert [r["avg"] for r in rows(engine, "vm", "vm1", 3600, T0 - timedelta(hours=1))] == [10.0]
    assert roll_up_pending(engine, "lab") is None


def test_keystone_auth_without_a_usable_cloud_is_a_clear_gnocchi_error(tmp_path, monkeypatch):
    """The Keystone path goes through the provider's clouds.yaml entry; a missing one is reported as such
    (the capture loop then retries with its back-off), never a traceback."""
    from stackwatch.config.settings import ProviderConfig
    from stackwatch.metrics.gnocchi import GnocchiClient, GnocchiError

    (tmp_path / "clouds.yaml").write_text("clouds: {}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "clouds.yaml"))
    provider = ProviderConfig.model_validate({"name": "lab", "cloud": "nowhere", "metrics": {}})
    with pytest.raises(GnocchiError, match="provider lab"):
        GnocchiClient.for_provider(provider)
