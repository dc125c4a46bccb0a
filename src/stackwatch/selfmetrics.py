"""Prometheus metrics every stackwatch process records, and the one place that sets up how they are shared.

Catchers often run in other processes than the API (`stackwatch worker catcher`, store / converter children),
so metrics use prometheus_client's multiprocess mode: each process writes its values to files under one
directory (`$PROMETHEUS_MULTIPROC_DIR`, default `<data_dir>/metrics`) and `/metrics` adds them up. The
directory must be chosen before prometheus_client is first imported (`configure`, called by `serve` and
`worker` at start-up); a process that never calls it keeps its metrics in memory, for itself.
Imports prometheus_client lazily: a short CLI command pays nothing for it.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from pathlib import Path
from typing import Any

ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"
_PID_FILE = re.compile(r"_(\d+)\.db$")
log = logging.getLogger(__name__)


def configure(data_dir: Path) -> Path:
    """Choose the shared directory (unless the environment already did), and forget the files of processes
    that are gone (their counters restart, which Prometheus' rate() expects of a restarted process)."""
    path = Path(os.environ.setdefault(ENV_DIR, str(Path(data_dir) / "metrics")))
    path.mkdir(parents=True, exist_ok=True)
    for f in path.glob("*.db"):
        m = _PID_FILE.search(f.name)
        if m and not _alive(int(m.group(1))):
            f.unlink(missing_ok=True)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@functools.cache
def _m() -> Any:
    """The metric objects (created once per process, after `configure`)."""
    from types import SimpleNamespace

    from prometheus_client import Counter, Histogram

    pm = ("provider", "monitor")
    return SimpleNamespace(
        received=Counter("stackwatch_events_received_total", "messages received from a monitor", pm),
        stored=Counter("stackwatch_events_stored_total", "events newly stored", pm),
        duplicated=Counter("stackwatch_events_duplicated_total", "messages already stored (redeliveries)", pm),
        quarantined=Counter("stackwatch_events_quarantined_total", "messages kept in the quarantine", pm),
        filtered=Counter("stackwatch_events_filtered_total", "messages dropped by the provider's filter", pm),
        collapsed=Counter("stackwatch_events_collapsed_total", "identical events counted by flood control", pm),
        batch_seconds=Histogram("stackwatch_store_batch_seconds", "time to store one batch", ["provider"],
                                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)),
        refresh_calls=Counter("stackwatch_refresh_api_calls_total", "OpenStack API calls by inventory refreshes",
                              ["provider", "mode"]),
        refresh_seconds=Histogram("stackwatch_refresh_seconds", "inventory refresh duration", ["provider", "mode"],
                                  buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)),
        rule_actions=Counter("stackwatch_rule_actions_total", "rule actions run", ["action", "outcome"]),
        push_deliveries=Counter("stackwatch_push_deliveries_total", "push deliveries", ["kind", "outcome"]),
        fleece_bytes=Counter("stackwatch_fleece_bytes_read_total", "bytes read by fleece runs", ["provider"]),
        fleece_seconds=Histogram("stackwatch_fleece_seconds", "fleece run duration", ["provider"],
                                 buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)),
    )


def _safe(func: Any) -> Any:
    """Metrics never break what they measure: a failure to record (rare: a full disk) is logged, not raised."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            func(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not record a metric", extra={"metric": func.__name__, "error": repr(exc)})

    return wrapper


@_safe
def record_batch(provider: str, monitor: str, report: Any, seconds: float) -> None:
    """One stored batch of a catcher (a CatchReport)."""
    m = _m()
    for counter, value in ((m.received, report.received), (m.stored, report.stored),
                           (m.duplicated, report.duplicates), (m.quarantined, report.quarantined),
                           (m.filtered, report.filtered), (m.collapsed, report.collapsed)):
        if value:
            counter.labels(provider, monitor).inc(value)
    m.batch_seconds.labels(provider).observe(seconds)


@_safe
def record_refresh(provider: str, mode: str, api_calls: int, seconds: float) -> None:
    m = _m()
    m.refresh_calls.labels(provider, mode).inc(api_calls)
    m.refresh_seconds.labels(provider, mode).observe(seconds)


@_safe
def record_fleece(provider: str | None, bytes_read: int | None, seconds: float | None) -> None:
    m = _m()
    if bytes_read:
        m.fleece_bytes.labels(provider or "").inc(bytes_read)
    if seconds is not None:
        m.fleece_seconds.labels(provider or "").observe(seconds)


@_safe
def record_rule_action(action: str, outcome: str) -> None:
    """For the rules engine: one action run, outcome ok / failed / skipped."""
    _m().rule_actions.labels(action, outcome).inc()


@_safe
def record_push(kind: str, outcome: str) -> None:
    """For push subscriptions: one delivery attempt, outcome delivered / failed / dropped."""
    _m().push_deliveries.labels(kind, outcome).inc()


def exposition() -> tuple[bytes, str]:
    """The text `/metrics` serves: every process's values when the shared directory is set, else this one's."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    _m()  # the metrics exist (at 0) even before anything was counted
    if os.environ.get(ENV_DIR):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
