"""The panko monitor against a real Panko 10 API: paging through 1,000 events that share one `generated` time,
late arrivals, Panko restarted mid-poll, a restarted monitor resuming from its persisted cursor, skip_history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from stackwatch.events.monitors.panko import PankoMonitor
from stackwatch.store.events import EventQuery
from tests.monitors.conftest import provider, run_catcher, stored_ids, wait_for
from tests.monitors.peers.panko_api import NOAUTH_HEADERS, event


def _panko_provider(panko, **extra):
    section = {"endpoint": panko.url, "auth": "none", "headers": NOAUTH_HEADERS, "interval_seconds": 0.3,
               "page_size": 100, **extra}
    return provider(panko=section, monitor="panko", **extra.pop("_events", {}))




def _ts(dt: datetime) -> str:
    return dt.replace(tzinfo=None).isoformat()


def test_thousand_at_one_time_late_arrivals_restarts_no_loss(panko, pg_store):
    g = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
    history = [event(i, _ts(g - timedelta(hours=1)), prefix="0000000a-0000-0000-0000") for i in range(300)]
    same = [event(i, _ts(g), prefix="0000000b-0000-0000-0000") for i in range(1000)]
    panko.record(history + same)
    prov = _panko_provider(panko)
    runner = run_catcher(prov, pg_store)
    try:
        wait_for(lambda: len(stored_ids(pg_store)) >= 1300, 180, what="1,300 events stored")
        ids = stored_ids(pg_store)
        assert len(ids) == 1300 and max(ids.values()) == 1
        # the events became canonical ones by their traits
        ev = pg_store.get("0000000b-0000-0000-0000-000000000007", provider="lab")
        assert ev.project_id == "proj-a" and ev.vm_ref == "inst-7" and ev.host_ref == "host1"
        assert ev.timestamp == g
        # late arrivals inside the read-back window (5 s behind the newest event read), and new events
        late = [event(i, _ts(g - timedelta(seconds=2)), prefix="0000000c-0000-0000-0000") for i in range(40)]
        new = [event(i, _ts(g + timedelta(seconds=2)), prefix="0000000d-0000-0000-0000") for i in range(150)]
        panko.record(late + new)
        wait_for(lambda: len(stored_ids(pg_store)) >= 1490, 120, what="late and new events stored")
        # Panko restarted while the monitor polls a fresh backlog
        more = [event(i, _ts(g + timedelta(seconds=60)), prefix="0000000e-0000-0000-0000") for i in range(400)]
        panko.record(more)
        wait_for(lambda: len(stored_ids(pg_store)) > 1490, 60, interval=0.02, what="the backlog to start")
        panko.stop()
        assert runner.is_alive()
        wait_for(lambda: runner.monitor.counters["unavailable"] > 0, 30, what="the monitor to notice Panko is down")
        panko.start()
        wait_for(lambda: len(stored_ids(pg_store)) >= 1890, 120, what="every event after the restart")
    finally:
        runner.stop()
    ids = stored_ids(pg_store)
    assert len(ids) == 1890, "no event lost"
    assert max(ids.values()) == 1, "no event stored twice"

    # a restarted monitor resumes from the persisted cursor: it re-reads the read-back window only
    position = pg_store.get_cursor("lab", "panko")
    assert position["generated"] == _ts(g + timedelta(seconds=60)) and len(position["ids"]) == 400
    newest = [event(i, _ts(g + timedelta(seconds=61)), prefix="0000000f-0000-0000-0000") for i in range(5)]
    panko.record(newest)
    runner = run_catcher(_panko_provider(panko), pg_store)
    try:
        wait_for(lambda: len(stored_ids(pg_store)) >= 1895, 60, what="the 5 newest events")
        wait_for(runner.monitor.cycle_done.is_set, 30, what="a full poll cycle")
        requests = runner.monitor.stats()["requests"]
    finally:
        runner.stop()
    ids = stored_ids(pg_store)
    assert len(ids) == 1895 and max(ids.values()) == 1
    # the window holds 405 events: 5 pages of 100 (history would be 19 pages); nothing older was asked for
    assert requests <= 6, f"{requests} requests: history was read again"


def test_skip_history_stores_only_events_after_first_start(panko, pg_store):
    old = datetime.now(UTC) - timedelta(minutes=10)
    panko.record([event(i, _ts(old), prefix="0000001a-0000-0000-0000") for i in range(30)])
    prov = provider(name="lab", monitor="panko", skip_history=True,
                    panko={"endpoint": panko.url, "auth": "none", "headers": NOAUTH_HEADERS,
                           "interval_seconds": 0.3})
    runner = run_catcher(prov, pg_store)
    try:
        wait_for(runner.monitor.cycle_done.is_set, 30, what="a first poll cycle")
        fresh = datetime.now(UTC) + timedelta(seconds=1)
        panko.record([event(i, _ts(fresh), prefix="0000001b-0000-0000-0000") for i in range(20)])
        wait_for(lambda: len(stored_ids(pg_store)) >= 20, 60, what="the 20 new events")
        runner.monitor.cycle_done.clear()
        wait_for(runner.monitor.cycle_done.is_set, 30, what="one more cycle")
    finally:
        runner.stop()
    ids = stored_ids(pg_store)
    assert len(ids) == 20 and all(i.startswith("0000001b") for i in ids)


def test_panko_event_becomes_canonical_by_traits(panko, pg_store):
    g = datetime(2026, 12, 2, 8, 30, 15, 123456, tzinfo=UTC)
    panko.record([event(1, _ts(g), project="proj-z", prefix="0000002a-0000-0000-0000")])
    runner = run_catcher(_panko_provider(panko), pg_store)
    try:
        wait_for(lambda: pg_store.query(EventQuery(provider="lab")), 60, what="the event")
    finally:
        runner.stop()
    (ev,) = pg_store.query(EventQuery(provider="lab"))
    assert ev.event_type == "compute.instance.create.end"
    assert ev.timestamp == g
    assert ev.project_id == "proj-z"
    assert ev.vm_ref == "inst-1" and ev.host_ref == "host1"
    traits = {t[0]: t[2] for t in ev.payload["traits"]}
    assert traits["memory_mb"] == 512  # Panko's "512" typed again


def test_availability_and_config_errors():
    assert not PankoMonitor.available(provider()).ok
    ok = PankoMonitor.available(provider(panko={"endpoint": "http://127.0.0.1:1"}))
    assert ok.ok and "127.0.0.1:1/v2/events" in ok.reason
    bad = PankoMonitor.available(provider(panko={"page_size": 0, "endpoint": "http://x"}))
    assert bad.misconfigured and "events.panko.page_size" in bad.reason
    nocloud = PankoMonitor.available(provider(panko={}))
    assert not nocloud.ok and "cloud" in nocloud.reason


def test_panko_on_postgresql_events_inserted_while_paging(panko_pg, pg_store):
    """Panko over PostgreSQL: 600 events recorded at one `generated` time while the monitor pages through
    them (pages of 50); every one stored once, none without its traits."""
    import threading

    g = datetime(2026, 12, 6, 7, 0, 0)
    panko_pg.record([event(i, g.isoformat(), prefix="0000006a-0000-0000-0000") for i in range(100)])
    section = {"endpoint": panko_pg.url, "auth": "none", "headers": NOAUTH_HEADERS, "interval_seconds": 0.2,
               "page_size": 50}
    runner = run_catcher(provider(monitor="panko", panko=section), pg_store)
    writer = threading.Thread(target=panko_pg.record, args=(
        [event(i, g.isoformat(), prefix="0000006b-0000-0000-0000") for i in range(600)],))
    try:
        writer.start()
        writer.join(600)
        wait_for(lambda: len(stored_ids(pg_store)) >= 700, 180, what="700 events")
    finally:
        runner.stop()
    ids = stored_ids(pg_store)
    assert len(ids) == 700 and max(ids.values()) == 1
    with pg_store.engine.connect() as conn:
        bare = conn.execute(text("SELECT count(*) FROM events WHERE provider='lab' AND "
                                 "(project_id IS NULL OR vm_ref IS NULL)")).scalar_one()
    assert bare == 0
