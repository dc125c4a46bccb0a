"""oslo.messaging's own Notifier publishes real sample payloads; the AMQP monitor stores each exactly once.

Drivers `messagingv2` (the 2.0 envelope) and `messaging` (the 1.0 body), topics `notifications` and
`versioned_notifications`, every priority method of the Notifier, each service on its own exchange set
through `control_exchange` (as nova, neutron, cinder, ... do).
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter

import pytest

from stackwatch.events.catcher import Catcher
from stackwatch.events.monitors.amqp import AmqpMonitor
from stackwatch.events.runner import CatcherRunner
from stackwatch.store.db import open_store
from stackwatch.store.events import EventQuery
from tests.amqp.conftest import AMQP_URL, wait_for
from tests.amqp.corpus import SAMPLES

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

oslo_messaging = pytest.importorskip("oslo_messaging")
cfg = pytest.importorskip("oslo_config.cfg")

#: Notifier method -> the priority oslo puts on the wire.
METHODS = {"audit": "AUDIT", "debug": "DEBUG", "info": "INFO", "warn": "WARN", "warning": "WARN",
           "error": "ERROR", "critical": "CRITICAL", "sample": "SAMPLE"}
CONTEXT = {"project_id": "6f70656e737461636b20342065766572", "user_id": "fake-user", "request_id": "req-sw-1"}


def _context():  # noqa: ANN202 - oslo only flattens a RequestContext into `_context_*` keys
    from oslo_context.context import RequestContext

    return RequestContext(**CONTEXT)


def _existing_queues() -> set[str]:
    out = subprocess.run(["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return {line.split("\t")[0] for line in out.splitlines() if line.strip()}


def _notifier(exchange: str, driver: str, topic: str, publisher: str):  # noqa: ANN202
    conf = cfg.ConfigOpts()
    conf([], project="stackwatch-test", default_config_files=[], default_config_dirs=[])
    oslo_messaging.set_transport_defaults(control_exchange=exchange)
    transport = oslo_messaging.get_notification_transport(conf, url=AMQP_URL.replace("amqp://", "rabbit://", 1))
    assert conf.control_exchange == exchange
    return transport, oslo_messaging.Notifier(transport, publisher_id=publisher, driver=driver, topics=[topic])


@pytest.mark.parametrize("driver", ["messagingv2", "messaging"])
@pytest.mark.parametrize("topic", ["notifications", "versioned_notifications"])
@pytest.mark.parametrize("fast", [True, False], ids=["fast-deliveries", "pika-deliveries"])
def test_oslo_notifier_each_stored_once(driver, topic, fast, broker, tag, pg_url, make_provider):
    versioned = topic == "versioned_notifications"
    samples = [s for s in SAMPLES if s.file.startswith("nova_versioned") == versioned]
    services = tuple(sorted({s.exchange for s in samples}))
    prov = make_provider(services, fast_deliveries=fast)
    before = _existing_queues()
    store = open_store(pg_url)
    runner = CatcherRunner(AmqpMonitor(prov), Catcher(store, prov)).start()
    transports = []
    expected: Counter[tuple[str, str, str]] = Counter()
    try:
        assert runner.monitor.connected.wait(15), runner.monitor.stats()
        for sample in samples:
            transport, notifier = _notifier(f"{tag}-{sample.exchange}", driver, topic, sample.publisher_id)
            transports.append(transport)
            for method, priority in METHODS.items():
                getattr(notifier, method)(_context(), sample.event_type, sample.payload)
                expected[(sample.event_type, sample.publisher_id, priority)] += 1
        total = sum(expected.values())
        wait_for(lambda: store.count(prov.name) >= total, 30, what=f"{total} events stored")
        time.sleep(1.0)  # anything delivered twice would show up now
        assert store.count(prov.name) == total
        wait_for(lambda: runner.monitor.stats()["acked"] == total, 10, what="all acknowledged")
        assert runner.monitor.stats()["fast_deliveries"] == (total if fast else None)  # which decoder ran
        assert broker.ready(prov.events.amqp["queue"]) == 0

        events = store.query(EventQuery(provider=prov.name, limit=10_000))
        assert len(events) == total
        assert len({e.message_id for e in events}) == total
        got = Counter((e.event_type, e.publisher_id, e.priority) for e in events)
        assert got == expected
        for ev in events:
            assert ev.source == "amqp"
            assert ev.timestamp is not None and ev.timestamp.tzinfo is not None
            assert ev.request_id == CONTEXT["request_id"]
            assert ev.user_id is not None
            assert ev.payload is not None
        by_type = {e.event_type: e for e in events}
        if versioned:
            create = by_type["instance.create.end"]
            assert create.vm_ref == create.payload["nova_object.data"]["uuid"]
            assert create.group == "creation"
        else:
            assert by_type["compute.instance.create.end"].vm_ref is not None
            port = by_type["port.create.end"]
            assert port.port_ref == port.payload["port"]["id"]
            assert by_type["volume.create.end"].volume_ref == by_type["volume.create.end"].payload["volume_id"]
            assert by_type["compute.instance.create.end"].project_id is not None
    finally:
        runner.stop()
        store.dispose()
        for transport in transports:
            transport.cleanup()
        # oslo's publisher declares its shared `<topic>.<priority>` queues; remove the ones this test created
        broker.queues.update(_existing_queues() - before)


def test_notifications_larger_than_a_frame_arrive_whole(broker, tag, pg_url, make_provider):
    """RabbitMQ splits a body over 128 KiB frames; between small ones, a 700 KB notification (a server
    with a large metadata blob) is reassembled byte for byte."""
    prov = make_provider(("nova",))
    before = _existing_queues()
    store = open_store(pg_url)
    runner = CatcherRunner(AmqpMonitor(prov), Catcher(store, prov)).start()
    transport = None
    try:
        assert runner.monitor.connected.wait(15), runner.monitor.stats()
        transport, notifier = _notifier(f"{tag}-nova", "messagingv2", "notifications", "compute.host1")
        blob = "".join(f"{i:08x}" for i in range(700_000 // 8))
        for i in range(5):
            payload = {"instance_id": f"vm-{i}", "metadata": {"blob": blob if i % 2 else "small"}}
            notifier.info(_context(), "compute.instance.update", payload)
        wait_for(lambda: store.count(prov.name) >= 5, 30, what="5 events stored")
        events = store.query(EventQuery(provider=prov.name, limit=10))
        assert sorted(e.vm_ref for e in events) == [f"vm-{i}" for i in range(5)]
        for ev in events:
            assert ev.payload["metadata"]["blob"] == (blob if ev.vm_ref in ("vm-1", "vm-3") else "small")
        assert runner.monitor.stats()["fast_deliveries"] == 5
        assert store.quarantine_count(prov.name) == 0
    finally:
        runner.stop()
        store.dispose()
        if transport is not None:
            transport.cleanup()
        broker.queues.update(_existing_queues() - before)
