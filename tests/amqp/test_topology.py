"""What the AMQP monitor declares and binds on the real broker, and how it survives clashes."""

from __future__ import annotations

import logging
import subprocess

import pika
import pytest

from stackwatch.events.catcher import Catcher
from stackwatch.events.monitors.amqp import AmqpMonitor
from stackwatch.events.monitors.amqp_config import DEFAULT_EXCHANGES, DEFAULT_TOPICS
from stackwatch.events.runner import CatcherRunner
from stackwatch.store.db import open_store
from tests.amqp.conftest import AMQP_URL, wait_for
from tests.amqp.corpus import envelope_bodies

pytestmark = pytest.mark.rabbitmq


def _bindings(queue: str) -> set[tuple[str, str]]:
    out = subprocess.run(["rabbitmqctl", "-q", "list_bindings", "source_name", "destination_name", "routing_key"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    found = set()
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1] == queue and parts[0]:
            found.add((parts[0], parts[2]))
    return found


def _queue_type(queue: str) -> str:
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name", "type", "durable"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    for line in out.splitlines():
        parts = line.split("\t")
        if parts[0] == queue:
            return f"{parts[1]} durable={parts[2]}"
    raise AssertionError(f"no queue {queue}")


def test_default_exchanges_and_topics_are_bound_to_our_own_durable_queue(broker, tag):
    from stackwatch.config.settings import ProviderConfig

    queue = f"stackwatch-test-{tag}"
    broker.queues.add(queue)
    prov = ProviderConfig.model_validate({"name": f"p{tag}", "events": {"amqp": {"urls": [AMQP_URL], "queue": queue}}})
    mon = AmqpMonitor(prov)
    conn = broker.connect()
    try:
        mon._declare(conn)  # declaration only: this test does not consume the shared service exchanges
    finally:
        conn.close()
    bindings = _bindings(queue)
    for exchange in DEFAULT_EXCHANGES:
        for topic in DEFAULT_TOPICS:
            assert (exchange, f"{topic}.*") in bindings
            assert (exchange, f"{topic}.error") in bindings
    assert _queue_type(queue) == "classic durable=true"
    # never oslo's shared queue
    assert not any(q.startswith("notifications.") for q in [queue])


def test_one_copy_per_message_although_several_bindings_match(broker, make_provider):
    prov = make_provider(("nova",))
    queue = prov.events.amqp["queue"]
    conn = broker.connect()
    AmqpMonitor(prov)._declare(conn)
    conn.close()
    broker.publish(prov.events.amqp["exchanges"][0], "notifications.info", [b"{}"])
    wait_for(lambda: broker.ready(queue) >= 1, 5)
    assert broker.ready(queue) == 1


def test_quorum_queue_option(broker, make_provider):
    prov = make_provider(("nova",), queue_type="quorum")
    conn = broker.connect()
    AmqpMonitor(prov)._declare(conn)
    conn.close()
    assert _queue_type(prov.events.amqp["queue"]).startswith("quorum")


def test_survives_exchange_and_queue_declaration_mismatches(broker, make_provider, tmp_path, caplog):
    """nova's exchange exists durable, neutron's as a *direct* exchange, our queue as a quorum queue:
    every declaration of ours clashes (PreconditionFailed), the monitor still binds and catches all."""
    prov = make_provider(("nova", "neutron"))
    nova, neutron = prov.events.amqp["exchanges"]
    queue = prov.events.amqp["queue"]
    conn = broker.connect()
    ch = conn.channel()
    ch.exchange_declare(nova, "topic", durable=True)
    ch.exchange_declare(neutron, "direct", durable=False)
    ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    conn.close()

    store = open_store(f"sqlite:///{tmp_path / 'sw.db'}")
    caplog.set_level(logging.WARNING, logger="stackwatch.events.monitors.amqp")
    runner = CatcherRunner(AmqpMonitor(prov), Catcher(store, prov)).start()
    try:
        assert runner.monitor.connected.wait(15), runner.monitor.stats()
        a = envelope_bodies(20)
        b = envelope_bodies(20)
        broker.publish(nova, "notifications.info", [body for _, body in a])
        # a direct exchange only routes exact keys: the explicit per-priority bindings catch these
        broker.publish(neutron, "notifications.error", [body for _, body in b[:10]])
        broker.publish(neutron, "versioned_notifications.warn", [body for _, body in b[10:]])
        wait_for(lambda: store.count(prov.name) >= 40, 15, what="40 stored")
        assert store.count(prov.name) == 40
        assert all(store.get(mid, prov.name) is not None for mid, _ in a + b)
    finally:
        runner.stop()
        store.dispose()
    text = caplog.text
    assert f"exchange {nova} exists with other settings" in text
    assert f"exchange {neutron} exists with other settings" in text
    assert f"queue {queue} exists with other arguments" in text
    assert "PRECONDITION_FAILED" in text


def test_fails_over_to_the_next_url_and_masks_passwords(broker, make_provider, tmp_path, caplog):
    dead = "amqp://guest:topsecret@127.0.0.1:1/"
    prov = make_provider(("nova",), urls=[dead, AMQP_URL])
    store = open_store(f"sqlite:///{tmp_path / 'sw.db'}")
    caplog.set_level(logging.INFO, logger="stackwatch")
    runner = CatcherRunner(AmqpMonitor(prov), Catcher(store, prov)).start()
    try:
        assert runner.monitor.connected.wait(15), runner.monitor.stats()
        bodies = envelope_bodies(5)
        broker.publish(prov.events.amqp["exchanges"][0], "notifications.info", [b for _, b in bodies])
        wait_for(lambda: store.count(prov.name) == 5, 10, what="5 stored")
        assert runner.monitor.stats()["connect_failures"] >= 1
    finally:
        runner.stop()
        store.dispose()
    assert "amqp://guest:***@127.0.0.1:1/" in caplog.text
    assert "topsecret" not in caplog.text


def test_provider_check_cli(broker, make_provider, tmp_path):
    import yaml
    from typer.testing import CliRunner

    from stackwatch.cli.main import app as main_app
    from stackwatch.cli.provider import app

    prov = make_provider(("nova",))
    path = tmp_path / "sw.yaml"
    path.write_text(yaml.safe_dump({
        "database": f"sqlite:///{tmp_path / 'sw.db'}",
        "providers": [
            {"name": prov.name, "events": {"monitor": "auto", "amqp": dict(prov.events.amqp)}},
            {"name": "quiet"},
            {"name": "broken", "events": {"amqp": {"urls": ["amqp://u:pw@127.0.0.1:1/"]}}},
        ],
    }))
    cli = CliRunner()
    ok = cli.invoke(main_app, ["provider", "check", prov.name, "--config", str(path)])
    assert ok.exit_code == 0, ok.output
    assert "-> amqp" in ok.output and "lower priority than amqp" in ok.output
    assert "probe: ok" in ok.output
    quiet = cli.invoke(main_app, ["provider", "check", "quiet", "--config", str(path), "--format", "json"])
    assert quiet.exit_code == 0
    assert '"selected": "null"' in quiet.output and "no events.amqp section" in quiet.output
    broken = cli.invoke(app, ["check", "broken", "--config", str(path)])
    assert broken.exit_code == 3
    assert "no broker answers" in broken.output and "pw@" not in broken.output


def test_pika_is_what_we_consume_with():
    assert pika.__version__


def test_queue_deleted_under_the_consumer_is_declared_again(broker, make_provider, tmp_path):
    prov = make_provider(("nova",))
    exchange, queue = prov.events.amqp["exchanges"][0], prov.events.amqp["queue"]
    store = open_store(f"sqlite:///{tmp_path / 'sw.db'}")
    monitor = AmqpMonitor(prov)
    runner = CatcherRunner(monitor, Catcher(store, prov)).start()
    try:
        assert monitor.connected.wait(15)
        conn = broker.connect()
        conn.channel().queue_delete(queue)  # the broker cancels our consumer
        conn.close()
        wait_for(lambda: monitor.stats()["connects"] >= 2 and monitor.connected.is_set(), 15, what="re-declared")
        bodies = envelope_bodies(10)
        broker.publish(exchange, "notifications.info", [b for _, b in bodies])
        wait_for(lambda: store.count(prov.name) == 10, 15, what="10 stored")
        assert "ConsumerCancelled" in (monitor.stats()["last_error"] or "")
    finally:
        runner.stop()
        store.dispose()
