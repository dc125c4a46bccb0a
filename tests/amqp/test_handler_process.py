"""The handler stage as users run it: `stackwatch worker catcher` stores, a separate `stackwatch worker handler`
handles the stored stream; the handler is killed with SIGKILL mid-stream and restarted: every event is
handled, a finished batch is never handled again, at most the batch in flight at the kill is repeated.

Default settings throughout (flood control, handler batch size and lease), on the real RabbitMQ and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stackwatch.config.settings import HandlersConfig
from stackwatch.store.db import open_store
from stackwatch.store.models import EventRow
from stackwatch.store.stream import HandlerPositionRow
from stackwatch.switchboard.routes import RoutingTable
from tests.amqp.conftest import AMQP_URL, wait_for
from tests.amqp.corpus import envelope_bodies

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow]
N = 20_000


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "stackwatch", *args], stdout=out, stderr=subprocess.STDOUT,
                                env=env)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _queue_declared(broker, queue: str) -> bool:  # noqa: ANN001
    try:
        broker.ready(queue)
    except Exception:  # noqa: BLE001 - 404 until the catcher declared it
        return False
    return True


def _policy_lines(log: Path) -> list[dict]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            doc = json.loads(line)
            if doc.get("msg") == "policy event":
                out.append(doc)
    return out


def test_handler_killed_mid_stream_handles_every_event_after_restart(broker, pg_url, tag, tmp_path):
    exchange, queue, name = f"{tag}-nova", f"stackwatch-test-{tag}", f"p{tag}"
    broker.exchanges.add(exchange)
    broker.queues.add(queue)
    config = tmp_path / "stackwatch.yaml"
    config.write_text(yaml.safe_dump({
        "database": pg_url,
        "providers": [{"name": name, "events": {"monitor": "amqp", "amqp": {
            "urls": [AMQP_URL], "exchanges": [exchange], "queue": queue}}}],
    }))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    store = open_store(pg_url)  # migrated before the processes start, so the test can poll the tables
    engine = store.engine
    handler_log, catcher_log = tmp_path / "handler.log", tmp_path / "catcher.log"

    def position() -> HandlerPositionRow | None:
        with Session(engine) as s:
            return s.scalars(select(HandlerPositionRow).where(HandlerPositionRow.handler == "policy",
                                                              HandlerPositionRow.partition == name)).first()

    handler = _spawn(["worker", "handler", "--config", str(config)], handler_log, env)
    catcher = _spawn(["worker", "catcher", "--config", str(config), "--provider", name], catcher_log, env)
    try:
        wait_for(lambda: position() is not None, 60, what="the handler's position row")
        wait_for(lambda: _queue_declared(broker, queue), 60, interval=0.2, what="the catcher's queue")
        bodies = envelope_bodies(N)
        broker.publish(exchange, "notifications.info", [b for _, b in bodies], confirm=False)

        wait_for(lambda: (position().handled or 0) >= 1000, 120, interval=0.002, what="handling under way")
        os.kill(handler.pid, signal.SIGKILL)
        handler.wait(10)
        at_kill = position().handled
        assert at_kill < N - 2000, "the handler finished before the kill: the test did not kill it mid-stream"

        handler = _spawn(["worker", "handler", "--config", str(config)], handler_log, env)
        def accounted() -> int:  # rows, plus the events flood control counted onto them
            with Session(engine) as s:
                return int(s.scalar(select(func.count() + func.coalesce(func.sum(EventRow.collapsed_count), 0))
                                    .where(EventRow.provider == name)))

        wait_for(lambda: accounted() == N, 120, interval=0.2, what="every event stored or counted")
        with Session(engine) as s:
            rows = s.scalar(select(func.count()).where(EventRow.provider == name))
        wait_for(lambda: position().handled >= rows, 120, interval=0.1, what="every event handled")
        time.sleep(1.0)
        final = position()
        with Session(engine) as s:
            stored = s.execute(select(EventRow.message_id, EventRow.event_type).where(EventRow.provider == name)).all()
    finally:
        _stop(handler)
        _stop(catcher)
        store.dispose()

    assert len(stored) == rows
    assert final.handled == rows  # each event's handling finished once, counted when its batch's position moved
    routes = RoutingTable.load()
    expected = Counter(mid for mid, etype in stored if routes.route(etype).policy)
    raised = Counter(line["message_id"] for line in _policy_lines(handler_log))
    assert expected and set(raised) == set(expected)  # every policy event raised, none of an event without one
    repeated = sum(n - 1 for n in raised.values())
    assert repeated <= HandlersConfig().batch_size  # only the batch in flight at the kill was handled twice
    assert "took over the position of a dead process" in handler_log.read_text()
    print(f"\n{N} published, {rows} stored (the rest counted by flood control); killed at {at_kill} handled; "
          f"{repeated} policy events raised twice after the restart")
