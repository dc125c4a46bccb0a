"""Webhook actions against real HTTP servers started by the test (SQLite and the real PostgreSQL): a receiver
that answers 500 twice then 200 gets the event, retried, signed; one that never answers is dead-lettered
after N attempts, each audited; `stackwatch rules retry --send` delivers it once it is back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

import orjson
import pytest

from stackwatch.backoff import Backoff
from stackwatch.push.outbox import Outbox
from stackwatch.push.signing import verify
from stackwatch.store.db import open_store
from stackwatch.switchboard.rules.actions.base import ActionContext
from stackwatch.switchboard.rules.audit import RuleAudit
from stackwatch.switchboard.rules.handler import RulesHandler, build_dispatcher
from stackwatch.switchboard.rules.manage import event_rules
from stackwatch.switchboard.rules.rulesfile import RulesSource
from tests.delivery.receiver import Receiver
from tests.rules.samples import ROUTES, VERSIONED_ERROR, sample

SECRET = "hook-secret-for-tests"


def _rules(path, url: str, max_attempts: int = 10, timeout: float = 2.0) -> None:
    path.write_text(f"""
rules:
  - name: instance-errors
    events: ["compute.instance.*.error", "instance.*.error"]
    actions:
      - webhook: {{url: "{url}", secret_env: TEST_HOOK_SECRET, max_attempts: {max_attempts}, timeout: {timeout}}}
""")


def _run(store, rules_path, events, until, timeout: float = 20.0):
    """Store `events`, handle them with the rules handler and send with a dispatcher until `until()` holds."""
    from stackwatch.config.settings import Settings

    store.write_batch(events)
    outbox = Outbox(store.engine, backoff=Backoff(0.05, 0.2))
    handler = RulesHandler(RulesSource(rules_path), ROUTES, RuleAudit(store.engine, outbox))
    handler.handle(events)
    dispatcher = build_dispatcher(ActionContext(Settings(), store.engine), outbox, 4, 2, 1, 0.05)
    try:
        assert dispatcher.drain(timeout, until=until), "the deliveries did not finish in time"
    finally:
        dispatcher.stop()
    return outbox


def test_a_receiver_failing_twice_gets_the_event_once_retried_and_signed(store, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)
    event = sample(VERSIONED_ERROR)
    with Receiver(answers=[500, 500], default=200) as rx:
        _rules(tmp_path / "rules.yaml", rx.url)
        outbox = _run(store, tmp_path / "rules.yaml", [event],
                      until=lambda: [r.state for r in Outbox(store.engine).list()] == ["done"])
    assert len(rx.requests) == 3
    for request in rx.requests:
        h = request.headers
        assert h["x-stackwatch-event-id"] == event.message_id and h["x-stackwatch-rule"] == "instance-errors"
        assert h["idempotency-key"] == f"instance-errors:{event.message_id}"
        assert verify(request.body, SECRET, h["x-stackwatch-signature"])
        assert request.body == rx.requests[0].body
    body = orjson.loads(rx.requests[0].body)
    assert body == orjson.loads(orjson.dumps(store.get(event.message_id).to_json_dict()))  # payload included
    assert body["payload"]["nova_object.data"]["fault"]
    (match,) = event_rules(store.engine, event.message_id)
    (action,) = match["actions"]
    assert action["state"] == "done" and [a["status"] for a in action["history"]] == [500, 500, 200]
    assert all(a["duration_ms"] >= 0 for a in action["history"])
    assert outbox.counts() == {("rule", "instance-errors"): {"done": 1}}


def test_a_receiver_that_never_answers_is_dead_lettered_then_retry_delivers(store, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_HOOK_SECRET", SECRET)
    events = [replace(sample(VERSIONED_ERROR), message_id=f"err-{i}") for i in range(2)]
    config = tmp_path / "stackwatch.yaml"
    config.write_text(json.dumps({"database": db_url, "rules": "rules.yaml"}))
    env = {**os.environ, "TEST_HOOK_SECRET": SECRET}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "stackwatch", "-c", str(config), *args], env=env,
                              capture_output=True, text=True, timeout=120)

    with Receiver(hang=True) as rx:  # accepts the connection, reads the request, never answers
        _rules(tmp_path / "rules.yaml", rx.url, max_attempts=3, timeout=0.5)
        _run(store, tmp_path / "rules.yaml", events,
             until=lambda: [r.state for r in Outbox(store.engine).list()] == ["dead", "dead"])
        assert len(rx.requests) == 6
        failed = json.loads(cli("rules", "runs", "--failed", "--format", "json").stdout)
        assert sorted(r["message_id"] for r in failed) == ["err-0", "err-1"]
        for run in failed:
            assert run["state"] == "dead" and run["attempts"] == 3 and len(run["history"]) == 3
            assert all(a["verdict"] == "retry" and a["status"] is None and "timeout" in a["error"]
                       for a in run["history"])
            assert all(a["duration_ms"] >= 400 for a in run["history"])
        shown = json.loads(cli("events", "show", "err-0", "--format", "json").stdout)
        assert shown["rules"][0]["rule"] == "instance-errors"
        assert shown["rules"][0]["actions"][0]["state"] == "dead"
        rx.hang = False  # the receiver is back
        result = cli("rules", "retry", "instance-errors", "--send", "--timeout", "60")
        assert result.returncode == 0, result.stderr
        assert "re-queued 2" in result.stdout and "done 2" in result.stdout
        resent = rx.requests[6:]
    assert sorted(r.headers["x-stackwatch-event-id"] for r in resent) == ["err-0", "err-1"]
    assert all(verify(r.body, SECRET, r.headers["x-stackwatch-signature"]) for r in resent)
    runs = json.loads(cli("rules", "runs", "instance-errors", "--format", "json").stdout)
    assert {r["state"] for r in runs} == {"done"} and [len(r["history"]) for r in runs] == [4, 4]
    assert json.loads(cli("rules", "runs", "--failed", "--format", "json").stdout) == []


@pytest.fixture
def store(db_url):
    s = open_store(db_url)
    yield s
    s.dispose()
