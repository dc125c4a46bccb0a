"""kill -9 of the pushing process mid-stream: `stackwatch worker handler` (the push handler and its dispatcher,
default settings) delivers to two slow webhooks of projects A and B on the real PostgreSQL; it is killed with
SIGKILL while delivering and started again. Afterwards every subscriber has every event of its project, none
of the other's, and any event received twice came with the same `X-Stackwatch-Event-Id`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
import yaml

from stackwatch.push.signing import verify
from stackwatch.store.db import open_store
from stackwatch.store.stream import HandlerPositions
from tests.delivery.receiver import Receiver
from tests.push.conftest import wait_for
from tests.push.notifications import bodies

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
N = 600
A, B = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "stackwatch", *args], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "stackwatch", *args], stdout=out, stderr=subprocess.STDOUT,
                                env=env)


def test_kill9_mid_stream_every_subscriber_gets_everything(pg_database, tmp_path):
    config = tmp_path / "stackwatch.yaml"
    config.write_text(yaml.safe_dump({"database": pg_database,
                                      "providers": [{"name": "lab", "events": {"monitor": "none"}}]}))
    env = {**os.environ, "STACKWATCH_CONFIG": str(config), "PYTHONUNBUFFERED": "1", "HOOK_SECRET": "k9-secret"}
    store = open_store(pg_database)
    log = tmp_path / "handler.log"
    notes = tmp_path / "events.jsonl"
    sent = bodies(N, (A, B))
    notes.write_bytes(b"\n".join(orjson.dumps(b) for b in sent))
    with Receiver(delay=0.002) as rx_a, Receiver(delay=0.002) as rx_b:
        _run(["subscription", "add", "hook-a", "--provider", "lab", "--project", A, "--events", "compute.instance.*",
              "--to", rx_a.url, "--secret-env", "HOOK_SECRET"], env)
        _run(["subscription", "add", "hook-b", "--provider", "lab", "--project", B, "--to", rx_b.url], env)
        handler = _spawn(["worker", "handler"], log, env)
        try:
            positions = HandlerPositions(store.engine, owner="-")
            wait_for(lambda: any(r.handler == "push" for r in positions.all()), 60, "the push handler's position")
            _run(["events", "ingest", str(notes), "--provider", "lab"], env)
            wait_for(lambda: len(rx_a.requests) + len(rx_b.requests) >= 100, 90, "delivery under way")
            os.kill(handler.pid, signal.SIGKILL)
            handler.wait(10)
            at_kill = len(rx_a.requests) + len(rx_b.requests)
            assert at_kill < N - 50, "everything was delivered before the kill: not mid-stream"
            handler = _spawn(["worker", "handler"], log, env)
            want_a = {b["message_id"] for b in sent if b["_context_project_id"] == A}
            want_b = {b["message_id"] for b in sent if b["_context_project_id"] == B}

            def ids(rx: Receiver) -> set[str]:
                with rx.lock:
                    return {r.headers["x-stackwatch-event-id"] for r in rx.requests}

            wait_for(lambda: ids(rx_a) >= want_a and ids(rx_b) >= want_b, 180, "every event after the restart",
                     interval=0.2)
        finally:
            if handler.poll() is None:
                handler.terminate()
                handler.wait(30)
            store.dispose()
    for rx, want, signed in ((rx_a, want_a, True), (rx_b, want_b, False)):
        docs = [(r.headers["x-stackwatch-event-id"], orjson.loads(r.body), r) for r in rx.requests]
        assert {mid for mid, _, _ in docs} == want  # every event of its project, nothing else
        assert all(doc["message_id"] == mid for mid, doc, _ in docs)  # a duplicate carries its own event id
        assert all(verify(r.body, "k9-secret", r.headers.get("x-stackwatch-signature")) == signed for *_, r in docs)
    twice = sum(n - 1 for n in Counter(r.headers["x-stackwatch-event-id"] for r in rx_a.requests + rx_b.requests)
                .values())
    print(f"\n{N} events, killed after {at_kill} deliveries; {twice} delivered twice (same event id)")
