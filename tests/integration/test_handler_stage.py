"""The handler stage over the stored stream (SQLite and the real PostgreSQL): each handler sees every event
once, a failing handler retries its batch without holding up the others, a restart resumes where it stopped,
and two processes never handle the same partition at once."""

from __future__ import annotations

import threading
import time

from stackwatch.backoff import Backoff
from stackwatch.store.stream import EventStream, HandlerPositions
from stackwatch.switchboard.stage import HandlerStage
from tests.integration.test_event_stream import _events


class Recording:
    def __init__(self, name: str, fail: int = 0) -> None:
        self.name = name
        self.seen: list[str] = []
        self.fail = fail
        self.attempts = 0
        self.lock = threading.Lock()

    def handle(self, events) -> None:  # noqa: ANN001
        with self.lock:
            self.attempts += 1
            if self.fail:
                self.fail -= 1
                raise ConnectionError("compute API unreachable")
            self.seen.extend(e.message_id for e in events)


def _stage(store, handlers, owner: str, partitions=("p1",), batch_size: int = 7) -> HandlerStage:  # noqa: ANN001
    return HandlerStage(
        EventStream(store.engine), HandlerPositions(store.engine, owner=owner), handlers,
        lambda _name: list(partitions), batch_size=batch_size, poll_seconds=0.02, backoff=Backoff(0.01, 0.05),
    )


def _until(check, timeout: float = 20.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_every_handler_sees_every_event_once_and_failures_retry_the_batch(store):
    ok, flaky = Recording("ok"), Recording("flaky", fail=3)
    stage = _stage(store, [ok, flaky], "one").start()
    try:
        _until(lambda: stage.holds("ok", "p1") and stage.holds("flaky", "p1"))
        store.write_batch(_events(40))
        store.write_batch(_events(10, provider="p2"))  # not a partition of this stage
        expected = [f"m-{i}" for i in range(40)]
        _until(lambda: ok.seen == expected and flaky.seen == expected)
    finally:
        stage.stop()
    assert flaky.attempts >= 3 + 40 // 7 and stage.stats["flaky"].failures == 3
    positions = {(r.handler, r.partition): r for r in HandlerPositions(store.engine, owner="x").all()}
    assert positions[("ok", "p1")].handled == 40 and positions[("flaky", "p1")].handled == 40
    assert positions[("ok", "p1")].owner is None  # released at stop


def test_a_restart_resumes_from_the_saved_position(store):
    first = Recording("h")
    stage = _stage(store, [first], "one").start()
    _until(lambda: stage.holds("h", "p1"))
    store.write_batch(_events(20))
    _until(lambda: len(first.seen) == 20)
    stage.stop()
    store.write_batch(_events(15, prefix="later"))  # stored while no handler runs
    second = Recording("h")
    stage = _stage(store, [second], "two").start()
    try:
        _until(lambda: len(second.seen) == 15)
        time.sleep(0.2)
    finally:
        stage.stop()
    assert second.seen == [f"later-{i}" for i in range(15)]


def test_two_processes_share_a_partition_without_handling_an_event_twice(store):
    a, b = Recording("h"), Recording("h")
    one, two = _stage(store, [a], "one").start(), _stage(store, [b], "two").start()
    try:
        _until(lambda: one.holds("h", "p1") or two.holds("h", "p1"))
        store.write_batch(_events(60))
        _until(lambda: len(a.seen) + len(b.seen) >= 60)
        time.sleep(0.3)
    finally:
        one.stop()
        two.stop()
    assert sorted(a.seen + b.seen) == sorted(f"m-{i}" for i in range(60))
    assert not (a.seen and b.seen)  # the lease holder handled all of it


def test_operators_see_each_handler_position_and_backlog(store, tmp_path, monkeypatch):
    """`stackwatch handlers --format json` and GET /api/v1/handlers report what the stage left."""
    import json

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from stackwatch.api.app import create_app
    from stackwatch.cli.main import app
    from stackwatch.config.settings import Settings

    h = Recording("h")
    stage = _stage(store, [h], "one").start()
    _until(lambda: stage.holds("h", "p1"))
    store.write_batch(_events(12))
    _until(lambda: len(h.seen) == 12)
    stage.stop()
    store.write_batch(_events(5, prefix="late"))  # nobody handles these: the backlog
    monkeypatch.setenv("STACKWATCH_DATABASE_URL", str(store.engine.url.render_as_string(hide_password=False)))
    res = CliRunner().invoke(app, ["handlers", "--format", "json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.output)
    assert (row["handler"], row["partition"], row["handled"], row["backlog"], row["owner"]) == ("h", "p1", 12, 5, None)
    api = TestClient(create_app(Settings(database=str(store.engine.url.render_as_string(hide_password=False))), store))
    (doc,) = api.get("/api/v1/handlers").json()
    assert (doc["handled"], doc["backlog"]) == (12, 5)
