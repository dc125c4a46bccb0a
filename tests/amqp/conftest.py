"""Fixtures for the AMQP integration tests: the real RabbitMQ on 127.0.0.1:5672 and the real PostgreSQL.

Every test gets its own PostgreSQL database, its own exchanges (`<tag>-nova`, ...) and its own queue, so
tests never see each other's messages; all of it is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pytest

AMQP_URL = os.environ.get("STACKWATCH_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
PG_ADMIN_URL = os.environ.get("STACKWATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

pytestmark = pytest.mark.rabbitmq


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def wait_for(condition: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Broker:
    """Admin side of the test broker: declare, publish, count, clean up."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.queues: set[str] = set()
        self.exchanges: set[str] = set()

    def connect(self) -> pika.BlockingConnection:
        return pika.BlockingConnection(pika.URLParameters(self.url))

    def publish(self, exchange: str, routing_key: str, bodies: list[bytes], confirm: bool = True) -> None:
        conn = self.connect()
        ch = conn.channel()
        if confirm:
            ch.confirm_delivery()
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
        for body in bodies:
            ch.basic_publish(exchange, routing_key, body, props)
        conn.close()

    def queue_counts(self, queue: str) -> tuple[int, int]:
        """(ready, unacknowledged) as the broker reports them."""
        out = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "name", "messages_ready", "messages_unacknowledged"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
        for line in out.splitlines():
            parts = line.split("\t")
            if parts[0] == queue:
                return int(parts[1]), int(parts[2])
        raise AssertionError(f"queue {queue} not found")

    def ready(self, queue: str) -> int:
        conn = self.connect()
        try:
            return conn.channel().queue_declare(queue, passive=True).method.message_count
        finally:
            conn.close()

    def cleanup(self) -> None:
        try:
            conn = self.connect()
        except pika.exceptions.AMQPError:
            return
        for queue in self.queues:
            ch = conn.channel()
            with contextlib.suppress(pika.exceptions.AMQPError):
                ch.queue_delete(queue)
        for exchange in self.exchanges:
            ch = conn.channel()
            with contextlib.suppress(pika.exceptions.AMQPError):
                ch.exchange_delete(exchange)
        conn.close()


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = Broker(AMQP_URL)
    try:
        b.connect().close()
    except Exception as exc:  # noqa: BLE001
        _skip_or_fail(f"RabbitMQ not reachable at {AMQP_URL}: {exc}")
    yield b
    b.cleanup()


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test only."""
    import psycopg

    admin_url = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except Exception as exc:  # noqa: BLE001
        _skip_or_fail(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    name = f"sw_amqp_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def provider_config(name: str, exchanges: list[str], queue: str, **amqp: Any) -> dict[str, Any]:
    """A provider section as it appears in the YAML configuration."""
    return {
        "name": name,
        "events": {
            "monitor": "amqp",
            "flood": {"window_seconds": 0},
            "amqp": {"urls": [AMQP_URL], "exchanges": exchanges, "queue": queue, "reconnect_max": 2.0, **amqp},
        },
    }


@pytest.fixture
def make_provider(broker: Broker, tag: str) -> Callable[..., Any]:
    """make_provider(services=("nova",), **amqp) -> ProviderConfig with exchanges `<tag>-<service>`."""
    from stackwatch.config.settings import ProviderConfig

    def make(services: tuple[str, ...] = ("nova",), name: str | None = None, **amqp: Any) -> ProviderConfig:
        exchanges = [f"{tag}-{s}" for s in services]
        queue = amqp.pop("queue", f"stackwatch-test-{tag}")
        broker.exchanges.update(exchanges)
        broker.queues.add(queue)
        return ProviderConfig.model_validate(provider_config(name or f"p{tag}", exchanges, queue, **amqp))

    return make
