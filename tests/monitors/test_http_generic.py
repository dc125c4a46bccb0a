"""The generic http monitor, configured only by `events.http`, against two real services: Panko 10's event
API (paged by `marker`) and stackwatch's own `/api/v1/events` (newest first, paged by `since`)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.monitors.conftest import provider, run_catcher, stored_ids, wait_for
from tests.monitors.peers.panko_api import NOAUTH_HEADERS, event, free_port


def test_http_monitor_polls_panko_by_configuration(panko, pg_store):
    g = datetime(2026, 12, 3, 9, 0, 0)
    panko.record([event(i, (g + timedelta(seconds=i // 50)).isoformat(), prefix="0000003a-0000-0000-0000")
                  for i in range(250)])
    section = {"url": panko.url + "/v2/events", "headers": NOAUTH_HEADERS,
               "params": {"q.field": "all_tenants", "q.op": "eq", "q.type": "", "q.value": "true",
                          "sort": ["generated:asc", "message_id:asc"]},
               "items": "", "message_id": "message_id", "event_type": "event_type", "timestamp": "generated",
               "cursor": "param", "cursor_param": "marker", "cursor_field": "message_id", "page_size": 100,
               "item_format": "as_is",
               "interval_seconds": 0.3}
    runner = run_catcher(provider(monitor="http", http=section), pg_store)
    try:
        wait_for(lambda: len(stored_ids(pg_store)) >= 250, 120, what="250 events")
        panko.record([event(i, (g + timedelta(minutes=5)).isoformat(), prefix="0000003b-0000-0000-0000")
                      for i in range(30)])
        wait_for(lambda: len(stored_ids(pg_store)) >= 280, 60, what="30 more")
    finally:
        runner.stop()
    ids = stored_ids(pg_store)
    assert len(ids) == 280 and max(ids.values()) == 1
    with pg_store.engine.connect() as conn:
        row = conn.execute(text("SELECT event_type, timestamp FROM events WHERE message_id = "
                                "'0000003a-0000-0000-0000-000000000120'")).one()
    assert row.event_type == "compute.instance.create.end"  # and refs from the traits (flood control keys)
    assert row.timestamp.replace(tzinfo=None) == g + timedelta(seconds=2)
    assert pg_store.get_cursor("lab", "http")["value"] == "0000003b-0000-0000-0000-000000000029"


def test_http_monitor_polls_stackwatch_api_by_configuration(tmp_path, pg_store):
    """A second real event service: another stackwatch's REST API (newest first, `since` cursor)."""
    import uvicorn

    from stackwatch.api.app import create_app
    from stackwatch.config.settings import Settings
    from stackwatch.events.catcher import Catcher
    from stackwatch.store.db import open_store

    upstream = open_store(f"sqlite:///{tmp_path / 'upstream.db'}")
    up_prov = provider(name="upstream")
    catcher = Catcher(upstream, up_prov)
    base = datetime.now(UTC) - timedelta(minutes=30)

    def add(n: int, start: int) -> None:
        import orjson

        from stackwatch.events.model import RawMessage

        catcher.catch([RawMessage(orjson.dumps({
            "message_id": f"up-{i}", "event_type": "compute.instance.power_off.end", "publisher_id": "compute.h1",
            "timestamp": (base + timedelta(seconds=i)).isoformat(), "payload": {"instance_id": f"vm-{i}"}}))
            for i in range(start, start + n)])

    add(120, 0)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(), upstream), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, what="the upstream API")
    section = {"url": f"http://127.0.0.1:{port}/api/v1/events", "params": {"provider": "upstream"},
               "message_id": "message_id", "event_type": "event_type", "timestamp": "timestamp",
               "payload": "payload", "cursor": "param", "cursor_param": "since", "cursor_field": "timestamp",
               "cursor_from": "max", "page_size": 1000, "interval_seconds": 0.3}
    runner = run_catcher(provider(monitor="http", http=section), pg_store)
    try:
        wait_for(lambda: len(stored_ids(pg_store)) >= 120, 60, what="120 events")
        add(15, 120)
        wait_for(lambda: len(stored_ids(pg_store)) >= 135, 60, what="15 more")
        time.sleep(1)
    finally:
        runner.stop()
        server.should_exit = True
        thread.join(10)
        upstream.dispose()
    ids = stored_ids(pg_store)
    assert len(ids) == 135 and max(ids.values()) == 1
    ev = pg_store.get("up-7", provider="lab")
    assert ev.event_type == "compute.instance.power_off.end" and ev.vm_ref == "vm-7"
