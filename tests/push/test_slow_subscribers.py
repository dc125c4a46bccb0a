"""Subscribers that fail for a long time, with the default retry schedule and dispatcher settings:

- a webhook that is down (connection refused) for 60 s receives every event once it is back, in order per VM;
- among 100 subscriptions, one that never answers (each attempt hangs until the client's timeout) holds at most
  its own share of the dispatcher: the other 99 receive every event while it has delivered nothing, and their
  delivery time is printed beside a run without it (bench/push.py measures latency properly).
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import ThreadingHTTPServer

import orjson
import pytest

from stackwatch.config.settings import Settings
from stackwatch.push.handler import build
from stackwatch.push.report import subscription_report
from tests.delivery.receiver import Receiver
from tests.push.conftest import make_event, subscribe, wait_for

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_on(rx: Receiver, port: int) -> Receiver:
    """`rx` answering on `port` (the receiver's own handler, moved from the port it picked)."""
    rx.start()
    handler = rx.server.RequestHandlerClass
    rx.stop()
    rx.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    rx.server.daemon_threads = True
    threading.Thread(target=rx.server.serve_forever, daemon=True).start()
    return rx


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # a minute and more: on the production store
def test_down_for_60s_then_everything_arrives(push):
    store, handler = push
    port = _free_port()
    subscribe(store.engine, "sleepy", f"http://127.0.0.1:{port}/hook")
    events = [make_event(i, "proj-a", vm=f"vm-{i % 4}" if i % 5 else None) for i in range(30)]
    handler.handle(events)
    time.sleep(60)
    report = subscription_report(store.engine, "sleepy")
    assert report["deliveries"]["done"] == 0 and report["deliveries"]["dead"] == 0  # still retrying
    rx = _serve_on(Receiver(), port)
    try:
        wait_for(lambda: subscription_report(store.engine, "sleepy")["deliveries"]["done"] == len(events), 240,
                 "every event after the receiver came back", interval=0.5)
        got = [orjson.loads(r.body)["message_id"] for r in rx.requests]
    finally:
        rx.stop()
    assert sorted(got) == sorted(e.message_id for e in events) and len(got) == len(events)
    for vm in ("vm-1", "vm-2", "vm-3", "vm-0"):
        assert [m for m in got if m in {e.message_id for e in events if e.vm_ref == vm}] == \
               [e.message_id for e in events if e.vm_ref == vm]


def _run_99(store, handler, events, hung_url: str | None) -> float:  # noqa: ANN001
    with Receiver() as rx:
        for i in range(99):
            subscribe(store.engine, f"ok-{i:02d}", f"{rx.url}/ok-{i:02d}")
        if hung_url:
            subscribe(store.engine, "hung", hung_url)
        time.sleep(0.5)  # the catalog re-reads every 0.2 s
        start = time.monotonic()
        handler.handle(events)
        wait_for(lambda: len(rx.requests) >= 99 * len(events), 300, "the 99 subscriptions' deliveries", interval=0.1)
        took = time.monotonic() - start
        per_sub: dict[str, set[str]] = {}
        for r in rx.requests:
            per_sub.setdefault(r.headers["x-stackwatch-subscription"], set()).add(r.headers["x-stackwatch-event-id"])
        assert len(per_sub) == 99 and all(ids == {e.message_id for e in events} for ids in per_sub.values())
    return took


def test_one_hung_subscriber_among_100_delays_nobody(store):
    events = [make_event(i, "proj-a", vm=f"vm-{i % 5}") for i in range(10)]
    settings = Settings(push={"reload_seconds": 0.2})
    baseline_handler = build(store.engine, settings)
    try:
        baseline = _run_99(store, baseline_handler, events, None)
    finally:
        baseline_handler.close()
    from stackwatch.push.subscriptions import SubscriptionStore

    for sub in SubscriptionStore(store.engine).list():
        SubscriptionStore(store.engine).remove(sub.name)
    events = [make_event(100 + i, "proj-a", vm=f"vm-{i % 5}") for i in range(10)]
    handler = build(store.engine, settings)
    peak = {"hung": 0}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with handler.dispatcher._lock:
                peak["hung"] = max(peak["hung"], handler.dispatcher._by_owner[("subscription", "hung")])
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    with Receiver(hang=True) as hung:
        watcher.start()
        try:
            with_hung = _run_99(store, handler, events, hung.url)
            report = subscription_report(store.engine, "hung")
        finally:
            stop.set()
            watcher.join()
            handler.dispatcher._stop.set()
            handler.close()
    assert report["deliveries"]["done"] == 0  # it never answered, yet the 99 have everything
    assert 1 <= peak["hung"] <= settings.push.per_subscription  # it never held more than its share
    print(f"\n99 subscriptions x {len(events)} events delivered in {baseline:.2f}s alone, {with_hung:.2f}s beside "
          f"a hung subscriber (which held {peak['hung']} of {settings.push.workers} workers)")
