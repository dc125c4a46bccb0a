"""Fixtures for push: a store (SQLite and the real PostgreSQL), the push handler built as `serve` builds it,
events, and a real HTTP receiver (tests/delivery/receiver.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from stackwatch.config.settings import Settings
from stackwatch.events.model import Event
from stackwatch.push.filters import EventFilter, Scope
from stackwatch.push.handler import build
from stackwatch.push.report import subscription_report
from stackwatch.push.subscriptions import SubscriptionStore, new_subscription
from tests.amqp.conftest import wait_for as amqp_wait_for

PROVIDER = "lab"


def make_event(i: int, project: str | None, event_type: str = "compute.instance.power_on.end",
               vm: str | None = None, provider: str = PROVIDER) -> Event:
    return Event(message_id=f"msg-{i:06d}-{uuid.uuid4().hex[:6]}", provider=provider, source="test",
                 event_type=event_type, timestamp=None, project_id=project, vm_ref=vm,
                 payload={"n": i, "project": project})


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    return amqp_wait_for(condition, timeout, interval, what)


def delivered(engine, name: str, state: str = "done") -> int:  # noqa: ANN001
    """How many of subscription `name`'s deliveries are in `state` (done, pending, dead)."""
    return subscription_report(engine, name)["deliveries"][state]


def subscribe(engine, name: str, to: str, project: str | None = "proj-a", **kw: Any) -> None:  # noqa: ANN001
    events = kw.pop("events", None)
    refs = kw.pop("refs", None)
    provider = kw.pop("provider", PROVIDER)
    scope = Scope(project) if project else Scope(all_projects=True)
    SubscriptionStore(engine).add(new_subscription(name, provider, scope, EventFilter.build(events, None, refs), to,
                                                   **kw))


@pytest.fixture
def push(store):
    """(store, handler): the push handler with a running dispatcher on `store`, stopped afterwards."""
    handler = build(store.engine, Settings(push={"reload_seconds": 0.2}))
    yield store, handler
    handler.close()
