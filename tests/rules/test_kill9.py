"""kill -9 of `stackwatch worker handler` (the process running the rules) in the middle of 1,000 matching
events with a slow receiver: after a restart every event's action has succeeded, exactly once per
idempotency key at the receiver (a retry after the kill is allowed; it carries the same key), and no event
was matched twice. SQLite and the real PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace

from sqlalchemy import func, select

from stackwatch.push.outbox import Outbox
from stackwatch.store.db import open_store
from stackwatch.store.deliveries import RuleMatchRow
from stackwatch.store.stream import HandlerPositionRow
from tests.delivery.receiver import Receiver
from tests.rules.samples import VERSIONED_ERROR, sample

N = 1000


def _worker(config, log_path):  # noqa: ANN001, ANN202
    return subprocess.Popen([sys.executable, "-m", "stackwatch", "-c", str(config), "worker", "handler",
                             "--log-level", "info"], stdout=subprocess.DEVNULL, stderr=open(log_path, "ab"),
                            env={**os.environ, "KILL9_SECRET": "s"}, start_new_session=True)


def _until(check, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_kill9_mid_stream_every_action_succeeds_once_per_key(db_url, tmp_path):
    store = open_store(db_url)
    rx = Receiver(delay=0.02).start()
    workers = []
    try:
        (tmp_path / "rules.yaml").write_text(f"""
rules:
  - name: errors
    events: ["instance.*.error"]
    actions:
      - webhook: {{url: "{rx.url}", secret_env: KILL9_SECRET, timeout: 5}}
""")
        config = tmp_path / "stackwatch.yaml"
        config.write_text(json.dumps({"database": db_url, "rules": "rules.yaml", "providers": [{"name": "lab"}],
                                      "handlers": {"poll_seconds": 0.05}}))
        workers.append(_worker(config, tmp_path / "worker.log"))
        with store.engine.connect() as conn:
            _until(lambda: conn.execute(select(func.count()).select_from(HandlerPositionRow)
                                        .where(HandlerPositionRow.handler == "rules")).scalar() == 1
                   or conn.rollback(), 60, "the rules handler to start")
        base = sample(VERSIONED_ERROR)
        events = [replace(base, message_id=f"ev-{i:04d}", vm_ref=f"vm-{i % 50}") for i in range(N)]
        for i in range(0, N, 100):
            store.write_batch(events[i:i + 100])
        _until(lambda: len(rx.requests) >= 300, 60, "300 deliveries before the kill")
        os.kill(workers[0].pid, signal.SIGKILL)
        workers[0].wait(10)
        at_kill = len(rx.requests)
        assert at_kill < N, "everything was delivered before the kill: the test proves nothing"
        workers.append(_worker(config, tmp_path / "worker.log"))
        expected = {f"errors:ev-{i:04d}" for i in range(N)}
        box = Outbox(store.engine)
        _until(lambda: box.counts().get(("rule", "errors"), {}) == {"done": N}, 180, "every delivery done")
        keys = Counter(r.headers["idempotency-key"] for r in rx.requests)
        assert set(keys) == expected  # every event's action reached the receiver, nothing else did
        repeated = {k: n for k, n in keys.items() if n > 1}
        assert sum(repeated.values()) - len(repeated) <= 16, repeated  # at most the sends in flight at the kill
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(RuleMatchRow)).scalar() == N
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(20)
                except subprocess.TimeoutExpired:
                    worker.kill()
        rx.stop()
        store.dispose()
