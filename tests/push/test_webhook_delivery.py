"""Webhook push through the real outbox and dispatcher to a real HTTP receiver, on SQLite and PostgreSQL,
with the default retry schedule: a receiver answering 500 twice then 200 gets the event (signed, same event
id each time); one that never recovers is dead-lettered with every attempt shown, and `retry` re-sends it;
deliveries keep each VM's order; a removed subscription's pending deliveries stop."""

from __future__ import annotations

import orjson
import pytest

from stackwatch.push.report import retry_dead, subscription_report
from stackwatch.push.signing import verify
from stackwatch.push.subscriptions import SubscriptionStore
from tests.delivery.receiver import Receiver
from tests.push.conftest import delivered, make_event, subscribe, wait_for

SECRET = "s3cr3t-for-push"


def test_500_twice_then_200_is_delivered_signed(push, monkeypatch):
    store, handler = push
    monkeypatch.setenv("PUSH_TEST_SECRET", SECRET)
    with Receiver(answers=[500, 500]) as rx:
        subscribe(store.engine, "a-hook", rx.url, secret_env="PUSH_TEST_SECRET")
        event = make_event(1, "proj-a", vm="vm-1")
        handler.handle([event])
        wait_for(lambda: delivered(store.engine, "a-hook") == 1, 20, "delivered")
        assert len(rx.requests) == 3
        assert {r.headers["x-stackwatch-event-id"] for r in rx.requests} == {event.message_id}
        assert {r.headers["x-stackwatch-subscription"] for r in rx.requests} == {"a-hook"}
        for request in rx.requests:
            assert verify(request.body, SECRET, request.headers["x-stackwatch-signature"])
        doc = orjson.loads(rx.requests[-1].body)
        assert doc == orjson.loads(orjson.dumps(event.to_json_dict()))  # the whole canonical event
        assert doc["payload"] == {"n": 1, "project": "proj-a"}


def test_never_recovering_is_dead_lettered_then_retried(push):
    store, handler = push
    with Receiver(default=503) as rx:
        subscribe(store.engine, "dead-hook", rx.url, max_attempts=3)
        event = make_event(2, "proj-a")
        handler.handle([event])
        report = wait_for(lambda: (r := subscription_report(store.engine, "dead-hook"))["deliveries"]["dead"] and r,
                          30, "dead letter")
        [dead] = report["dead"]
        assert dead["message_id"] == event.message_id and dead["attempts"] == 3
        assert [t["status"] for t in dead["tries"]] == [503, 503, 503]
        assert len(rx.requests) == 3
        rx.default = 200
        assert retry_dead(store.engine, "dead-hook") == 1
        wait_for(lambda: delivered(store.engine, "dead-hook") == 1, 20, "re-sent")
        assert len(rx.requests) == 4


def test_a_4xx_is_final_at_once(push):
    store, handler = push
    with Receiver(default=410) as rx:
        subscribe(store.engine, "gone-hook", rx.url)
        handler.handle([make_event(3, "proj-a")])
        wait_for(lambda: delivered(store.engine, "gone-hook", "dead"), 20, "dead letter")
    [dead] = subscription_report(store.engine, "gone-hook")["dead"]
    assert dead["attempts"] == 1 and dead["last_status"] == 410 and len(rx.requests) == 1


def test_order_per_vm_and_scope(push):
    store, handler = push
    with Receiver() as rx:
        subscribe(store.engine, "order-hook", rx.url)
        events = [make_event(i, "proj-a" if i % 3 else "proj-b", vm=f"vm-{i % 2}") for i in range(40)]
        for start in range(0, 40, 7):
            handler.handle(events[start:start + 7])
        mine = [e for e in events if e.project_id == "proj-a"]
        wait_for(lambda: len(rx.requests) >= len(mine), 20, "deliveries")
        got = [orjson.loads(r.body) for r in rx.requests]
        assert sorted(d["message_id"] for d in got) == sorted(e.message_id for e in mine)
        assert {d["project_id"] for d in got} == {"proj-a"}
        for vm in ("vm-0", "vm-1"):
            assert [d["message_id"] for d in got if d["vm_ref"] == vm] == \
                   [e.message_id for e in mine if e.vm_ref == vm]


def test_handling_a_batch_twice_delivers_once(push):
    store, handler = push
    with Receiver() as rx:
        subscribe(store.engine, "once-hook", rx.url)
        events = [make_event(i, "proj-a") for i in range(5)]
        handler.handle(events)
        handler.handle(events)  # the stage replays the batch in flight after a crash
        wait_for(lambda: delivered(store.engine, "once-hook") == 5, 20, "delivered")
        assert len(rx.requests) == 5


def test_removed_subscription_stops(push):
    store, handler = push
    with Receiver(default=500) as rx:
        subscribe(store.engine, "gone-soon", rx.url)
        handler.handle([make_event(4, "proj-a")])
        wait_for(lambda: rx.requests, 10, "a first attempt")
        assert SubscriptionStore(store.engine).remove("gone-soon")
        from stackwatch.push.outbox import Outbox

        wait_for(lambda: Outbox(store.engine).list(source="subscription", owner="gone-soon", state="dead"), 20,
                 "the pending delivery ends")
        [dead] = Outbox(store.engine).list(source="subscription", owner="gone-soon", state="dead")
        assert dead.last_error == "subscription removed"


@pytest.mark.parametrize("to", ["zaqar:bad queue!", "ftp://x", "amqp://h/"])
def test_bad_destinations_are_refused(to):
    from stackwatch.push.destinations import DestinationError, parse_destination

    with pytest.raises(DestinationError):
        parse_destination(to)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_deliveries_statistics_are_refreshed_after_a_burst(store):
    """Claims planned from the statistics of a near-empty table take seconds each (bench/push_claim_plan.py):
    the handler analyzes `deliveries` once it has enqueued ANALYZE_FIRST_AT rows."""
    from sqlalchemy import text

    from stackwatch.config.settings import Settings
    from stackwatch.push.handler import ANALYZE_FIRST_AT, build

    handler = build(store.engine, Settings(), start=False)  # no dispatcher running: nothing is sent
    subscribe(store.engine, "burst", "https://8.8.8.8/never-called")

    def analyzed() -> bool:
        with store.engine.connect() as conn:
            return conn.execute(text("SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                                     "WHERE relname = 'deliveries'")).scalar()

    assert not analyzed()
    handler.handle([make_event(i, "proj-a") for i in range(ANALYZE_FIRST_AT - 1)])
    assert not analyzed()
    handler.handle([make_event(10_000, "proj-a")])
    wait_for(analyzed, 10, "ANALYZE deliveries")  # the statistics view is updated asynchronously
