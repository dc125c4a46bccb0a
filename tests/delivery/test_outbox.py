"""The outbox on SQLite and the real PostgreSQL: once per key, order per lane, retries with back-off, the
dead-letter and `retry`, two processes claiming, fairness between owners, every attempt audited."""

from __future__ import annotations

import threading
import time

import pytest

from stackwatch.backoff import Backoff
from stackwatch.push.dispatcher import Dispatcher
from stackwatch.push.outbox import ClaimBudget, NewDelivery, Outbox
from stackwatch.push.outcome import Outcome
from stackwatch.push.webhook import WebhookSender
from stackwatch.store.db import make_engine, upgrade
from tests.delivery.receiver import Receiver

FAST = Backoff(0.01, 0.05)


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _new(owner="r1", mid="m1", index=0, lane=None, kind="webhook", spec=None, **kw):
    return NewDelivery(source="rule", owner=owner, action_index=index, message_id=mid, lane=lane or mid,
                       kind=kind, spec=spec or {}, **kw)


def test_enqueue_is_once_per_key(engine):
    box = Outbox(engine)
    assert box.enqueue([_new(mid="a"), _new(mid="b"), _new(mid="a", index=1)]) == 3
    assert box.enqueue([_new(mid="a"), _new(mid="b"), _new(mid="c")]) == 1  # a replayed batch
    assert sorted((d.message_id, d.action_index) for d in box.list()) == [("a", 0), ("a", 1), ("b", 0), ("c", 0)]
    with pytest.raises(ValueError):
        NewDelivery("bogus", "o", 0, "m", "l", "log", {})


def test_a_lane_goes_in_order_and_waits_for_its_pending_head(engine):
    box = Outbox(engine, backoff=FAST)
    box.enqueue([_new(mid="e1", lane="vm1"), _new(mid="e2", lane="vm1"), _new(mid="e3", lane="vm2")])
    first = box.claim(ClaimBudget(10))
    assert [d.message_id for d in first] == ["e1", "e3"]  # e2 waits behind e1
    assert box.claim(ClaimBudget(10)) == []  # leased
    by_mid = {d.message_id: d for d in first}
    assert box.complete(by_mid["e1"], Outcome("retry", status=500), by_mid["e1"].created_at) == "pending"
    time.sleep(0.1)
    again = box.claim(ClaimBudget(10))
    assert [d.message_id for d in again] == ["e1"]  # still the head: e2 keeps waiting
    box.complete(again[0], Outcome.success(status=200), again[0].created_at)
    assert [d.message_id for d in box.claim(ClaimBudget(10))] == ["e2"]


def test_two_processes_never_claim_the_same_delivery(engine):
    box_a, box_b = Outbox(engine, owner="hostA:1"), Outbox(engine, owner="hostB:2")
    box_a.enqueue([_new(mid=f"m{i}", owner=f"o{i % 7}") for i in range(200)])
    got: list[list[int]] = [[], []]

    def claim(box, out):
        while batch := box.claim(ClaimBudget(16)):
            out.extend(d.id for d in batch)

    threads = [threading.Thread(target=claim, args=(b, o)) for b, o in ((box_a, got[0]), (box_b, got[1]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not set(got[0]) & set(got[1])
    assert len(got[0]) + len(got[1]) == 200


def test_retries_back_off_then_dead_letter_then_retry(engine):
    box = Outbox(engine, backoff=Backoff(1.0, 300.0))
    box.enqueue([_new(mid="x", max_attempts=3)])
    (d,) = box.claim(ClaimBudget(1))
    box.complete(d, Outcome("retry", error="boom"), d.created_at)
    (stored,) = box.list()
    wait = (stored.next_attempt_at - stored.updated_at).total_seconds()
    assert 0.4 <= wait <= 1.1  # the first retry within about a second
    assert box.claim(ClaimBudget(1)) == []  # not due yet
    box.backoff = FAST
    for _ in range(2):
        time.sleep(1.1)
        (d,) = box.claim(ClaimBudget(1))
        box.complete(d, Outcome("retry", status=503), d.created_at)
    (stored,) = box.list()
    assert (stored.state, stored.attempts, stored.last_status) == ("dead", 3, 503)
    attempts = box.attempts([stored.id])[stored.id]
    assert [a.attempt for a in attempts] == [1, 2, 3] and attempts[0].error == "boom"
    assert box.retry(owner="r1", extra_attempts=2) == 1
    (d,) = box.claim(ClaimBudget(1))
    assert box.complete(d, Outcome.success(status=200), d.created_at) == "done"
    assert [a.attempt for a in box.attempts([d.id])[d.id]] == [1, 2, 3, 4]
    assert box.retry() == 0


def test_final_answers_are_dead_at_once_and_retry_after_is_honoured(engine):
    box = Outbox(engine, backoff=FAST)
    box.enqueue([_new(mid="a"), _new(mid="b")])
    a, b = box.claim(ClaimBudget(2))
    assert box.complete(a, Outcome("final", status=404), a.created_at) == "dead"
    box.complete(b, Outcome("retry", status=429, retry_after=20), b.created_at)
    (stored,) = box.list(message_id="b")
    assert (stored.next_attempt_at - stored.updated_at).total_seconds() >= 19.9


def test_kind_caps_and_owner_room_limit_a_claim(engine):
    box = Outbox(engine)
    box.enqueue([_new(mid=f"f{i}", kind="fleece") for i in range(5)])
    box.enqueue([_new(mid=f"w{i}", owner="r2") for i in range(5)])
    got = box.claim(ClaimBudget(10, owner_room=lambda key: 3, kind_room={"fleece": 2}))
    assert sorted(d.kind for d in got) == ["fleece"] * 2 + ["webhook"] * 3


def test_dispatcher_delivers_retries_and_keeps_a_hanging_owner_from_the_others(engine):
    box = Outbox(engine, backoff=FAST)
    with Receiver(answers=[500, 500], default=200) as good, Receiver(hang=True) as bad:
        box.enqueue([_new(owner="bad", mid=f"b{i}", spec={"url": bad.url, "timeout": 3}) for i in range(20)])
        box.enqueue([_new(owner="good", mid="g0", spec={"url": good.url, "headers": {"X-K": "g0"}})])
        dispatcher = Dispatcher(box, {"webhook": WebhookSender()}, workers=4, per_owner=2, poll_seconds=0.05)
        dispatcher.start()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and box.list(message_id="g0")[0].state != "done":
                time.sleep(0.05)
        finally:
            dispatcher.stop(timeout=1)
        (g0,) = box.list(message_id="g0")
        assert g0.state == "done" and g0.attempts == 3
        assert [r.headers["x-k"] for r in good.requests] == ["g0"] * 3
        assert [a.status for a in box.attempts([g0.id])[g0.id]] == [500, 500, 200]
        assert len(bad.requests) <= 4  # never more than per_owner at once (+ what the stop let finish)
