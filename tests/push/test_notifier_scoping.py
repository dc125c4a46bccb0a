"""Scoping end to end: oslo.messaging's real Notifier publishes events of projects A, B, C and of no project on
the real RabbitMQ; stackwatch's catcher stores them in the real PostgreSQL and the push handler delivers them to
many subscriptions with random filters. Each subscription receives exactly the events of its own project its
filter names (computed here with fnmatch from what was published, not with stackwatch's matcher), each once
by event id, and 0 events of another project; only the admin's all-projects subscription sees project-less ones.
"""

from __future__ import annotations

import fnmatch
import random
import time
from collections import Counter, defaultdict

import orjson
import pytest

from stackwatch.config.settings import Settings
from stackwatch.store.db import open_store
from stackwatch.store.stream import HandlerPositions
from stackwatch.wiring import start_catchers, start_handlers
from tests.amqp.conftest import AMQP_URL, broker, make_provider, pg_url, tag  # noqa: F401 - fixtures
from tests.delivery.receiver import Receiver
from tests.push.conftest import subscribe, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow]
oslo_messaging = pytest.importorskip("oslo_messaging")
cfg = pytest.importorskip("oslo_config.cfg")

PROJECTS = ("a" * 32, "b" * 32, "c" * 32)
TYPES = ("compute.instance.power_on.end", "compute.instance.power_off.end", "compute.instance.reboot.start",
         "compute.instance.create.end")
GLOBS = ("*", "compute.instance.*", "*.end", "compute.instance.power_*", "*.start", "compute.instance.create.*")
VMS = tuple(f"00000000-0000-4000-8000-{i:012d}" for i in range(6))
N = 240


def _notifier(exchange: str):  # noqa: ANN202
    conf = cfg.ConfigOpts()
    conf([], project="stackwatch-push-test", default_config_files=[], default_config_dirs=[])
    oslo_messaging.set_transport_defaults(control_exchange=exchange)
    transport = oslo_messaging.get_notification_transport(conf, url=AMQP_URL.replace("amqp://", "rabbit://", 1))
    return transport, oslo_messaging.Notifier(transport, publisher_id="compute.host1", driver="messagingv2",
                                              topics=["notifications"])


def test_every_event_of_its_project_once_and_none_of_another(broker, tag, pg_url, make_provider):  # noqa: F811
    from oslo_context.context import RequestContext

    rng = random.Random(15)
    prov = make_provider(("nova",))
    settings = Settings(database=pg_url, providers=[prov], push={"reload_seconds": 0.2})
    store = open_store(pg_url)
    subs: dict[str, tuple[str | None, tuple[str, ...], str | None]] = {}
    with Receiver() as rx:
        for i in range(24):
            project = PROJECTS[i % 3]
            globs = tuple(rng.sample(GLOBS, rng.randint(1, 2)))
            vm = rng.choice(VMS) if rng.random() < 0.3 else None
            subs[f"s{i:02d}"] = (project, globs, vm)
            subscribe(store.engine, f"s{i:02d}", f"{rx.url}/s{i:02d}", project, events=list(globs),
                      refs={"vm": vm} if vm else None, provider=prov.name)
        subs["admin-all"] = (None, ("*",), None)
        subscribe(store.engine, "admin-all", f"{rx.url}/admin-all", None, provider=prov.name)
        handlers = start_handlers(settings, store)
        catchers = start_catchers(settings, store)
        transport, notifier = _notifier(f"{tag}-nova")
        published: list[tuple[int, str | None, str, str]] = []
        try:
            positions = HandlerPositions(store.engine, owner="-")
            wait_for(lambda: any(r.handler == "push" for r in positions.all()), 30, "the push handler's position")
            assert catchers.runners[0].monitor.connected.wait(15)
            for seq in range(N):
                project = rng.choice(PROJECTS + (None,))
                event_type, vm = rng.choice(TYPES), rng.choice(VMS)
                payload = {"instance_id": vm, "state": "active", "seq": seq}
                if project:
                    payload["tenant_id"] = project
                notifier.info(RequestContext(project_id=project, user_id="u1"), event_type, payload)
                published.append((seq, project, event_type, vm))
            expected: dict[str, set[int]] = defaultdict(set)
            for seq, project, event_type, vm in published:
                for name, (owner, globs, want_vm) in subs.items():
                    if (owner is None or owner == project) and any(fnmatch.fnmatchcase(event_type, g) for g in globs) \
                            and want_vm in (None, vm):
                        expected[name].add(seq)
            total = sum(len(v) for v in expected.values())
            wait_for(lambda: len(rx.requests) >= total, 120, f"{total} deliveries", interval=0.2)
            time.sleep(1.0)  # a duplicate would arrive now
        finally:
            catchers.stop()
            handlers.stop()
            transport.cleanup()
            store.dispose()
    got: dict[str, list[dict]] = defaultdict(list)
    ids: dict[str, Counter[str]] = defaultdict(Counter)
    for request in rx.requests:
        name = request.path.rsplit("/", 1)[1]
        assert request.headers["x-stackwatch-subscription"] == name
        doc = orjson.loads(request.body)
        got[name].append(doc)
        ids[name][request.headers["x-stackwatch-event-id"]] += 1
    crossed = sum(1 for name, docs in got.items() for d in docs
                  if subs[name][0] is not None and d["project_id"] != subs[name][0])
    assert crossed == 0
    for name in subs:
        assert {d["payload"]["seq"] for d in got[name]} == expected[name], name
        assert all(n == 1 for n in ids[name].values()), f"{name} got an event twice"
    assert any(d["project_id"] is None for d in got["admin-all"])  # project-less events reach only the admin's
    print(f"\n{N} published, {len(rx.requests)} deliveries to {len(subs)} subscriptions, 0 cross-project")
