"""Ceilometer 27's notification agent pushing to `stackwatch serve` through its real `http://` publisher:
2,000 notifications from oslo's Notifier stored once with the right fields, the receiver down for 10 s with
`ack_on_event_error = False` losing nothing, and bad bodies answered 4xx with a quarantine entry."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter

import pytest
from sqlalchemy import text

from tests.monitors.conftest import _need_telemetry, wait_for
from tests.monitors.peers.ceilometer_agent import Agent
from tests.monitors.peers.panko_api import free_port
from tests.monitors.peers.serve import Serve

TENANT = "7d1b0d1b6a7e4b1d9d3e1c2f0a0b0c0d"
USER, PASSWORD = "ceilo", "s3cret-pass"


@pytest.fixture
def serve(tmp_path, request):
    import psycopg

    db = request.getfixturevalue("pg_database")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    cfg = {"database": db, "handlers": {"full_refresh_seconds": 0},
           "providers": [{"name": "lab", "events": {"monitor": "ceilometer-http",
                                                    "ceilometer_http": {"username": USER, "password": PASSWORD}}},
                         {"name": "other", "events": {"monitor": "none"}}]}
    s = Serve(tmp_path / "serve", cfg, free_port())
    s.start()
    s.db = db
    yield s
    s.stop()


def _stored(db) -> Counter:
    return Counter(r.message_id for r in _query(db, "SELECT message_id FROM events WHERE provider='lab'"))


def _query(db, sql):
    from sqlalchemy import create_engine

    eng = create_engine(db.replace("postgresql://", "postgresql+psycopg://"))
    with eng.connect() as conn:
        rows = conn.execute(text(sql)).all()
    eng.dispose()
    return rows


def _publisher(serve) -> str:
    return f"http://{USER}:{PASSWORD}@127.0.0.1:{serve.port}/api/v1/ingest/ceilometer/lab?timeout=5&max_retries=2"


def test_agent_2000_notifications_stored_once(serve, tmp_path):
    _need_telemetry("ceilometer")
    # the documented setting (docs/monitors.md): a POST that fails on a connection reset is requeued, not lost
    agent = Agent(tmp_path / "agent", _publisher(serve), ack_on_event_error=False)
    agent.start()
    try:
        agent.send(2000)
        wait_for(lambda: sum(_stored(serve.db).values()) >= 2000, 300, interval=0.5, what="2,000 events")
        time.sleep(1)
    finally:
        agent.stop()
    ids = _stored(serve.db)
    assert len(ids) == 2000 and max(ids.values()) == 1
    rows = _query(serve.db, "SELECT event_type, timestamp, project_id, vm_ref, host_ref, source FROM events "
                            "WHERE provider='lab'")
    assert {r.event_type for r in rows} == {"compute.instance.create.end"}
    assert all(r.timestamp is not None for r in rows)
    assert {r.project_id for r in rows} == {TENANT}
    assert {r.vm_ref for r in rows} == {str(uuid.UUID(int=i + 1)) for i in range(2000)}
    assert {r.host_ref for r in rows} == {"host1"} and {r.source for r in rows} == {"ceilometer-http"}


def test_receiver_down_10s_nothing_lost(serve, tmp_path):
    _need_telemetry("ceilometer")
    agent = Agent(tmp_path / "agent", _publisher(serve), ack_on_event_error=False)
    agent.start()
    try:
        agent.send(20)
        wait_for(lambda: len(_stored(serve.db)) >= 20, 120, interval=0.3, what="the first 20")
        serve.stop()
        agent.send(100)
        time.sleep(10)
        serve.start()
        wait_for(lambda: len(_stored(serve.db)) >= 120, 180, interval=0.5, what="120 events after the restart")
    finally:
        agent.stop()
    ids = _stored(serve.db)
    assert len(ids) == 120 and max(ids.values()) == 1


def _post(url, body: bytes, auth=True):
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_bad_bodies_quarantined_with_4xx(serve):
    url = serve.url + "/api/v1/ingest/ceilometer/lab"
    good = {"message_id": "m-good-1", "event_type": "compute.instance.delete.end",
            "generated": "2026-11-22T02:49:18.908741",
            "traits": [["instance_id", 1, "vm-1"], ["project_id", 1, "p1"], ["memory_mb", 2, 512]], "raw": {}}
    assert _post(url, json.dumps([good]).encode(), auth=False)[0] == 401
    assert _post(url.replace("/lab", "/other"), b"[]")[0] == 404
    assert _post(url.replace("/lab", "/nope"), b"[]")[0] == 404
    status, answer = _post(url, json.dumps(good).encode())  # ?batch=False: one bare object
    assert status == 200 and answer["stored"] == 1
    assert _post(url, b"{not json")[0] == 400
    wrong = {**good, "message_id": "m-bad-2", "traits": [["instance_id", 9, "vm-1"]]}
    assert _post(url, json.dumps([wrong]).encode())[0] == 400
    wrong_value = {**good, "message_id": "m-bad-3", "traits": [["memory_mb", 2, "lots"]]}
    assert _post(url, json.dumps([wrong_value]).encode())[0] == 400
    huge = json.dumps([{**good, "message_id": "m-huge", "raw": {"x": "a" * (10 * 1024 * 1024)}}]).encode()
    assert _post(url, huge)[0] == 413
    raw_only = [{"tenant_id": "p9", "instance_id": "vm-raw", "host": "h9"}]
    assert _post(url + "?event_type=compute.instance.update", json.dumps(raw_only).encode())[0] == 200
    reasons = [r.reason for r in _query(serve.db, "SELECT reason FROM quarantine WHERE provider='lab'")]
    assert len(reasons) == 4
    assert any("not JSON" in r for r in reasons) and any("dtype" in r for r in reasons)
    assert any("not of type integer" in r for r in reasons) and any("max_event_bytes" in r for r in reasons)
    rows = _query(serve.db, "SELECT message_id, event_type, vm_ref, project_id FROM events WHERE provider='lab'")
    assert {(r.event_type, r.vm_ref) for r in rows} == {("compute.instance.delete.end", "vm-1"),
                                                        ("compute.instance.update", "vm-raw")}
