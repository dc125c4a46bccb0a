"""`amqp://...?exchange=X&routing_key=Y` destinations on the real RabbitMQ: persistent messages with the webhook
headers (event id, subscription, signature) on the user's exchange; a message no queue takes is retried until
a queue is bound (not dropped); refused credentials are final; the broker password is stored encrypted."""

from __future__ import annotations

import uuid

import orjson
import pika
import pytest
from cryptography.fernet import Fernet

from stackwatch.push.report import subscription_report
from stackwatch.push.signing import verify
from tests.amqp.conftest import AMQP_URL
from tests.push.conftest import make_event, subscribe, wait_for

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def broker_channel():
    try:
        conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"RabbitMQ not reachable: {exc}")
    channel = conn.channel()
    names: list[tuple[str, str]] = []
    yield channel, names
    for kind, name in names:
        (channel.queue_delete if kind == "queue" else channel.exchange_delete)(name)
    conn.close()


def _drain(channel, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:  # noqa: ANN001
    out = []
    while True:
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append((props, body))


def test_amqp_destination_publishes_persistent_signed_messages(push, broker_channel, monkeypatch):
    store, handler = push
    channel, names = broker_channel
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"push-test-{tag}", f"push-test-{tag}"
    channel.exchange_declare(exchange, "topic", durable=True)
    names.append(("exchange", exchange))
    monkeypatch.setenv("STACKWATCH_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("MQ_SECRET", "mq-secret")
    url = AMQP_URL.rstrip("/") + f"/%2F?exchange={exchange}&routing_key=stackwatch.events"
    subscribe(store.engine, "to-mq", url, secret_env="MQ_SECRET", max_attempts=50)
    report = subscription_report(store.engine, "to-mq")
    assert "guest:guest" not in report["to"] and "***" in report["to"]

    first = make_event(1, "proj-a", vm="vm-1")
    handler.handle([first])  # no queue bound yet: unroutable, so retried, not lost
    wait_for(lambda: subscription_report(store.engine, "to-mq")["deliveries"]["pending"] == 1
             and store.engine and _attempts(store, "to-mq") >= 1, 20, "a first, unroutable attempt")
    channel.queue_declare(queue, durable=True)
    names.append(("queue", queue))
    channel.queue_bind(queue, exchange, "stackwatch.#")
    more = [make_event(i, "proj-a", vm="vm-1") for i in range(2, 6)] + [make_event(9, "proj-b")]
    handler.handle(more)
    wait_for(lambda: subscription_report(store.engine, "to-mq")["deliveries"]["done"] == 5, 30, "5 published")
    got = _drain(channel, queue)
    assert [orjson.loads(body)["message_id"] for _, body in got] == [first.message_id] + [e.message_id
                                                                                          for e in more[:4]]
    for props, body in got:
        assert props.delivery_mode == 2 and props.content_type == "application/json"
        assert props.headers["X-Stackwatch-Event-Id"] == orjson.loads(body)["message_id"] == props.message_id
        assert verify(body, "mq-secret", props.headers["X-Stackwatch-Signature"])


def _attempts(store, name: str) -> int:  # noqa: ANN001
    from stackwatch.push.outbox import Outbox

    box = Outbox(store.engine)
    deliveries = box.list(source="subscription", owner=name)
    return sum(len(v) for v in box.attempts(d.id for d in deliveries).values())


def test_refused_credentials_are_final(push, monkeypatch):
    store, handler = push
    monkeypatch.setenv("STACKWATCH_SECRET_KEY", Fernet.generate_key().decode())
    host = AMQP_URL.rsplit("@", 1)[1].rstrip("/")
    subscribe(store.engine, "bad-creds", f"amqp://nobody:wrong@{host}/?exchange=amq.topic", max_attempts=5)
    handler.handle([make_event(1, "proj-a")])
    report = wait_for(lambda: (r := subscription_report(store.engine, "bad-creds"))["deliveries"]["dead"] and r,
                      30, "dead letter")
    assert report["dead"][0]["attempts"] == 1 and "credentials" in report["dead"][0]["last_error"]
