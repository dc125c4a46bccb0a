"""The runner: the writer process dying mid-stream, start_catchers for `serve`, the worker CLI's errors."""

from __future__ import annotations

import os
import signal
import time

import pytest
import yaml

from stackwatch.config.settings import Settings
from stackwatch.events.monitors.amqp import AmqpMonitor
from stackwatch.events.process_runner import ProcessCatcherRunner
from stackwatch.store.db import open_store
from stackwatch.wiring import start_catchers
from tests.amqp.conftest import provider_config, wait_for
from tests.amqp.corpus import envelope_bodies

pytestmark = [pytest.mark.rabbitmq]


@pytest.mark.postgres
@pytest.mark.parametrize("amqp", [{}, {"batch_size": 100, "prefetch": 300}], ids=["default", "tight-prefetch"])
def test_writer_process_killed_mid_stream_is_replaced_and_nothing_is_lost(amqp, broker, pg_url, make_provider):
    """With a tight prefetch every message we hold is with the dead child, so no new batch arrives to
    notice it: the replacement must not depend on one."""
    prov = make_provider(("nova",), **amqp)
    exchange = prov.events.amqp["exchanges"][0]
    store = open_store(pg_url)
    monitor = AmqpMonitor(prov)
    runner = ProcessCatcherRunner(monitor, pg_url).start()
    bodies = envelope_bodies(20_000)
    try:
        assert monitor.connected.wait(15)
        broker.publish(exchange, "notifications.info", [b for _, b in bodies], confirm=False)
        wait_for(lambda: store.count(prov.name) >= 3000, 60, interval=0.01, what="3000 stored")
        # freeze the child until everything we may hold (prefetch) is with it, then kill it
        os.kill(runner._child.pid, signal.SIGSTOP)
        time.sleep(1.5)
        os.kill(runner._child.pid, signal.SIGKILL)
        wait_for(lambda: store.count(prov.name) >= len(bodies), 90, interval=0.1, what="all stored")
        time.sleep(1)
        assert store.count(prov.name) == len(bodies)
        wait_for(lambda: monitor.stats()["acked"] == len(bodies), 10, what="all acknowledged")
        assert runner.child_restarts >= 1
        assert all(store.get(mid, prov.name) is not None for mid, _ in bodies[::97])
    finally:
        runner.stop()
        store.dispose()


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_start_catchers_runs_one_catcher_per_provider(writer, broker, tag, make_provider, tmp_path):
    a = make_provider(("nova",), name=f"a{tag}", queue=f"stackwatch-test-a{tag}")
    b = make_provider(("cinder",), name=f"b{tag}", queue=f"stackwatch-test-b{tag}")
    settings = Settings.model_validate({
        "database": f"sqlite:///{tmp_path / 'sw.db'}",
        "providers": [
            provider_config(a.name, a.events.amqp["exchanges"], a.events.amqp["queue"]),
            provider_config(b.name, b.events.amqp["exchanges"], b.events.amqp["queue"]),
            {"name": "quiet"},
        ],
    })
    handle = start_catchers(settings, writer=writer)
    store = open_store(settings.database_url)
    try:
        assert sorted(r.provider for r in handle.runners) == sorted([a.name, b.name])  # quiet: null, no thread
        for r in handle.runners:
            assert r.monitor.connected.wait(15)
        broker.publish(a.events.amqp["exchanges"][0], "notifications.info", [x for _, x in envelope_bodies(30)])
        broker.publish(b.events.amqp["exchanges"][0], "notifications.warn", [x for _, x in envelope_bodies(20)])
        wait_for(lambda: store.count(a.name) == 30 and store.count(b.name) == 20, 30, what="both stored")
        stats = handle.stats()
        assert stats[a.name]["alive"] and stats[b.name]["alive"]
    finally:
        handle.stop()
        store.dispose()
    assert not any(r.is_alive() for r in handle.runners)


def test_worker_catcher_reports_configuration_errors(tmp_path):
    from typer.testing import CliRunner

    from stackwatch.cli.main import app

    path = tmp_path / "sw.yaml"
    path.write_text(yaml.safe_dump({
        "database": f"sqlite:///{tmp_path / 'sw.db'}",
        "providers": [{"name": "lab", "events": {"monitor": "amqp", "amqp": {"queue": "notifications.info"}}}],
    }))
    cli = CliRunner()
    res = cli.invoke(app, ["worker", "catcher", "--config", str(path), "--provider", "lab"])
    assert res.exit_code == 2
    assert "shared notification queue" in " ".join(res.output.split())
    res = cli.invoke(app, ["worker", "catcher", "--config", str(path), "--provider", "nope"])
    assert res.exit_code == 2
    assert "unknown provider 'nope'" in " ".join(res.output.split())
