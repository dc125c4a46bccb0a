"""Panko's quirks, replayed by a proxy in front of the real Panko API: a marker that is gone (500) and an event
returned without its traits (the READ COMMITTED race). Nothing is lost, nothing is stored bare."""

from __future__ import annotations

from sqlalchemy import text

from tests.monitors.conftest import provider, run_catcher, stored_ids, wait_for
from tests.monitors.peers.panko_api import NOAUTH_HEADERS, event
from tests.monitors.peers.proxy import PankoProxy


def _section(url: str) -> dict:
    return {"endpoint": url, "auth": "none", "headers": NOAUTH_HEADERS, "interval_seconds": 0.3, "page_size": 50}


def test_marker_gone_falls_back_to_timestamp_cursor(panko, pg_store):
    panko.record([event(i, "2026-12-05T10:00:00", prefix="0000005a-0000-0000-0000") for i in range(180)])
    with PankoProxy(panko.url) as proxy:
        proxy.fail_next_marker = 2
        runner = run_catcher(provider(monitor="panko", panko=_section(proxy.url)), pg_store)
        try:
            wait_for(lambda: len(stored_ids(pg_store)) >= 180, 120, what="180 events")
        finally:
            runner.stop()
        assert proxy.fail_next_marker == 0, "the 500s were served"
        # every request had a limit and both sort keys (limit=0 would mean 100)
        assert all("limit=50" in p and "sort=generated%3Aasc" in p for p in proxy.paths)
    ids = stored_ids(pg_store)
    assert len(ids) == 180 and max(ids.values()) == 1


def test_traitless_event_is_read_again_not_stored_bare(panko, pg_store):
    panko.record([event(i, "2026-12-05T11:00:00", project="proj-t", prefix="0000005b-0000-0000-0000")
                  for i in range(60)])
    with PankoProxy(panko.url) as proxy:
        proxy.strip_traits_once = {"0000005b-0000-0000-0000-000000000010", "0000005b-0000-0000-0000-000000000055"}
        runner = run_catcher(provider(monitor="panko", panko=_section(proxy.url)), pg_store)
        try:
            wait_for(lambda: len(stored_ids(pg_store)) >= 60, 120, what="60 events")
        finally:
            runner.stop()
        assert not proxy.strip_traits_once, "both events were served without traits once"
    with pg_store.engine.connect() as conn:
        rows = conn.execute(text("SELECT message_id, project_id, vm_ref FROM events WHERE provider='lab'")).all()
    assert len(rows) == 60
    assert all(r.project_id == "proj-t" and r.vm_ref for r in rows), "no event stored without its traits"
