"""The event stream on SQLite and on the real PostgreSQL: dedup, queries, quarantine, flood, purge, outage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from stackwatch.config.settings import EventsConfig, FilterConfig, FloodConfig, ProviderConfig
from stackwatch.events.catcher import Catcher
from stackwatch.events.model import RawMessage
from stackwatch.store.db import open_store
from stackwatch.store.errors import StoreUnavailable
from stackwatch.store.events import EventQuery
from tests.conftest import SAMPLES, sample_files


def raw_samples() -> list[RawMessage]:
    return [RawMessage(body=p.read_bytes(), source="ingest") for p in sample_files()]


def test_samples_stored_once_and_queryable(store):
    catcher = Catcher(store, ProviderConfig(name="lab"))
    batch = raw_samples()
    first = catcher.catch(batch)
    assert first.quarantined == 0
    # nova's doc samples repeat some bodies byte for byte; those share their stable message_id
    distinct = len({e.message_id for e in first.stored_events})
    assert first.stored == distinct == store.count("lab")
    assert first.stored + first.duplicates == len(batch)

    again = catcher.catch(batch)
    assert again.stored == 0 and again.duplicates == len(batch)
    assert store.count("lab") == distinct

    vm = "178b0921-8f85-4257-88b6-2e743b5a975c"
    vm_events = store.query(EventQuery(vm=vm, limit=10_000))
    assert vm_events and all(e.vm_ref == vm for e in vm_events)
    times = [e.timestamp or e.received_at for e in vm_events]
    assert times == sorted(times)

    power = store.query(EventQuery(provider="lab", group="power", limit=10_000))
    assert power and {e.group for e in power} == {"power"}
    typed = store.query(EventQuery(type_glob="port.*", limit=10_000))
    assert typed and all(e.event_type.startswith("port.") for e in typed)
    exact = store.query(EventQuery(type_glob="port.create.end", limit=10_000))
    assert {e.event_type for e in exact} == {"port.create.end"}
    project = store.query(EventQuery(project="7c150a59fe714e6f9263774af9688f0e", limit=10_000))
    assert project and all(e.project_id == "7c150a59fe714e6f9263774af9688f0e" for e in project)
    latest = store.query(EventQuery(limit=3))
    assert len(latest) == 3

    since = datetime(2015, 1, 1, tzinfo=UTC)
    until = datetime(2016, 1, 1, tzinfo=UTC)
    window = store.query(EventQuery(since=since, until=until, limit=10_000))
    assert window and all(since <= e.timestamp < until for e in window)


def test_event_round_trips_with_payload_and_refs(store):
    raw = (SAMPLES / "oslo_wire" / "03_versioned_notifications.info_instance.create.end.body.json").read_bytes()
    Catcher(store, ProviderConfig(name="lab")).catch([RawMessage(body=raw, source="amqp")])
    event = store.get("8bed111d-fcbf-47f2-88bb-2483b50d037a")
    inner = orjson.loads(orjson.loads(raw)["oslo.message"])
    assert event.payload == inner["payload"]
    assert event.timestamp == datetime(2026, 11, 22, 2, 2, 49, 731597, UTC)
    assert event.timestamp.tzinfo is not None and event.received_at.tzinfo is not None
    assert event.source == "amqp" and event.vm_ref == "178b0921-8f85-4257-88b6-2e743b5a975c"
    doc = event.to_json_dict()
    assert doc["timestamp"] == "2026-11-22T02:02:49.731597+00:00"
    assert store.get("no-such-id") is None


def test_same_message_id_in_two_providers_is_two_events(store):
    raw = (SAMPLES / "oslo_wire" / "01_notifications.info_compute.instance.delete.end.body.json").read_bytes()
    for name in ("a", "b"):
        Catcher(store, ProviderConfig(name=name)).catch([RawMessage(body=raw)])
    assert store.count("a") == store.count("b") == 1 and store.count() == 2


def test_deny_and_allow_filters(store):
    cfg = ProviderConfig(name="lab", events=EventsConfig(filter=FilterConfig(deny=[r"^identity\.authenticate$"])))
    report = Catcher(store, cfg).catch(raw_samples())
    assert report.filtered == 2  # the two CADF authenticate samples
    assert not store.query(EventQuery(type_glob="identity.authenticate", limit=10))
    only = ProviderConfig(name="only", events=EventsConfig(filter=FilterConfig(allow=[r"^volume\."])))
    Catcher(store, only).catch(raw_samples())
    assert {e.event_type.split(".")[0] for e in store.query(EventQuery(provider="only", limit=1000))} == {"volume"}


def test_flood_is_collapsed_and_counted(store):
    cfg = ProviderConfig(name="lab", events=EventsConfig(flood=FloodConfig(window_seconds=60, threshold=5)))
    catcher = Catcher(store, cfg)
    body = orjson.loads((SAMPLES / "oslo_wire" / "01_notifications.info_compute.instance.delete.end.body.json")
                        .read_bytes())
    batch = [RawMessage(body=orjson.dumps({**body, "message_id": f"storm-{i}"})) for i in range(40)]
    report = catcher.catch(batch[:25])
    report2 = catcher.catch(batch[25:])
    assert report.stored == 5 and report.collapsed == 20
    # the count lands on an event of the same batch (one transaction): the first of a batch over the threshold
    # is stored to carry it, so a count never waits for, or lands on, another batch's row
    assert report2.stored == 1 and report2.collapsed == 14
    assert store.count("lab") == 6
    assert store.collapsed_count("storm-4", "lab") == 20  # the last stored event of the first batch
    assert store.collapsed_count("storm-25", "lab") == 14
    events = store.query(EventQuery(provider="lab", limit=100))
    assert len(events) + sum(e.collapsed_count for e in events) == 40  # every message accounted for


def test_quarantine_keeps_raw_bytes_and_reason(store):
    bad = b'{"event_type": 42, "payload": {}}'
    report = Catcher(store, ProviderConfig(name="lab")).catch([RawMessage(body=bad, source="amqp")])
    assert report.quarantined == 1 and report.stored == 0
    [record] = store.quarantined("lab")
    assert record.raw == bad and "event_type must be a string" in record.reason and record.source == "amqp"
    assert store.quarantine_count("lab") == 1


def test_purge_in_bounded_batches(store):
    Catcher(store, ProviderConfig(name="lab")).catch(raw_samples())
    total = store.count()
    old = len(store.query(EventQuery(until=datetime(2016, 1, 1, tzinfo=UTC), limit=10_000)))
    assert 0 < old < total
    assert store.purge(datetime(2016, 1, 1, tzinfo=UTC), batch_size=7) == old
    assert store.count() == total - old


def test_cursor_round_trip(store):
    assert store.get_cursor("lab", "panko") is None
    store.set_cursor("lab", "panko", {"ts": "2026-11-22T00:00:00", "marker": "m1"})
    store.set_cursor("lab", "panko", {"ts": "2026-11-22T00:00:01", "marker": "m2"})
    assert store.get_cursor("lab", "panko") == {"ts": "2026-11-22T00:00:01", "marker": "m2"}


def test_nul_characters_survive_on_both_backends(store):
    body = {"event_type": "compute.instance.update", "message_id": "nul-1", "timestamp": "2026-11-22 00:00:00",
            "payload": {"instance_id": "vm-nul", "display_name": "a\u0000b"}}
    report = Catcher(store, ProviderConfig(name="lab")).catch([RawMessage(body=orjson.dumps(body))])
    assert report.stored == 1
    # PostgreSQL text cannot hold NUL: it is stored as U+FFFD there; SQLite keeps it
    nul = "a\ufffdb" if store.engine.dialect.name == "postgresql" else "a\u0000b"
    assert store.get("nul-1").payload["display_name"] == nul


def test_unreachable_postgres_raises_store_unavailable():
    from stackwatch.store.db import make_engine
    from stackwatch.store.events import EventStore

    store = EventStore(make_engine("postgresql://postgres@127.0.0.1:1/nowhere"))
    raw = (SAMPLES / "oslo_wire" / "01_notifications.info_compute.instance.delete.end.body.json").read_bytes()
    with pytest.raises(StoreUnavailable):
        Catcher(store, ProviderConfig(name="lab")).catch([RawMessage(body=raw)])


def test_open_store_migrates_idempotently(db_url):
    first = open_store(db_url)
    first.dispose()
    second = open_store(db_url)  # a second start finds the schema at head and does nothing
    assert second.count() == 0
    second.dispose()


def test_received_at_orders_events_without_timestamp(store):
    catcher = Catcher(store, ProviderConfig(name="lab"))
    now = datetime.now(UTC)
    for i, name in enumerate(["instance-power_off-start.json", "instance-power_off-end.json"]):
        raw = (SAMPLES / "nova_versioned" / name).read_bytes()
        catcher.catch([RawMessage(body=raw, received_at=now + timedelta(seconds=i))])
    events = store.query(EventQuery(vm="178b0921-8f85-4257-88b6-2e743b5a975c", limit=10))
    assert [e.event_type for e in events] == ["instance.power_off.start", "instance.power_off.end"]


def test_retention_purges_only_configured_providers(store):
    from stackwatch.config.settings import Settings
    from stackwatch.events.retention import purge_once

    keep = ProviderConfig(name="keep")
    short = ProviderConfig(name="short", events=EventsConfig(retention_days=30))
    for cfg in (keep, short):
        Catcher(store, cfg).catch(raw_samples())
    kept_before = store.count("keep")
    purged = purge_once(Settings(providers=[keep, short]), store, batch_size=10)
    # every sample is older than 30 days except the nova doc samples, timed by their arrival
    assert purged == {"short": store.count("keep") - len(store.query(EventQuery(provider="short", limit=10_000)))}
    assert purged["short"] > 0
    assert store.count("keep") == kept_before
    assert all((e.timestamp or e.received_at) >= datetime.now(UTC) - timedelta(days=30)
               for e in store.query(EventQuery(provider="short", limit=10_000)))


def test_every_field_round_trips(store):
    """Each column lands where it belongs: every ref gets a distinct value and comes back in its own field."""
    from dataclasses import fields, replace

    from stackwatch.events.model import REF_FIELDS, Event

    base = Event(message_id="all-fields", provider="lab", source="amqp", event_type="compute.instance.update",
                 timestamp=datetime(2026, 11, 22, 1, 2, 3, 456789, UTC), publisher_id="compute.h1", priority="INFO",
                 project_id="p-1", user_id="u-1", request_id="req-1", group="configuration", level="detail",
                 received_at=datetime(2026, 11, 22, 1, 2, 4, tzinfo=UTC), payload={"k": ["v", 1, None, {"x": 2.5}]})
    event = replace(base, **{name: f"{name}-value" for name in REF_FIELDS})
    assert store.write_batch([event]).stored == ["all-fields"]
    back = store.get("all-fields")
    for f in fields(Event):
        assert getattr(back, f.name) == getattr(event, f.name), f.name


@pytest.mark.parametrize(("column", "index"), [("vm_ref", "ix_events_vm_time"), ("host_ref", "ix_events_host_time")])
def test_vm_and_host_timelines_use_their_partial_index(store, column, index):
    """The VM and host indexes hold only rows that have one (migration 0003); `= ?` must still use them."""
    from sqlalchemy import select, text

    from stackwatch.store.models import EventRow

    catcher = Catcher(store, ProviderConfig(name="lab"))
    catcher.catch(raw_samples())
    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("ANALYZE events"))
            conn.execute(text("SET enable_seqscan = off"))  # a few hundred rows: the planner would scan them
        stmt = (
            select(EventRow.id)
            .where(getattr(EventRow, column) == "x")
            .order_by(EventRow.sort_time.desc())
            .limit(100)
        )
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
        plan = " ".join(str(row) for row in conn.execute(text(prefix + sql)))
        has_partial = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE name = :n")
            if store.dialect == "sqlite"
            else text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
            {"n": index},
        ).scalar_one()
    assert index in plan, plan
    assert "IS NOT NULL" in has_partial, has_partial


def test_migration_0003_keeps_events_written_before_it(db_url):
    """A database at 0001 (jsonb payload, full indexes) upgrades in place; its events read back unchanged."""
    from stackwatch.store.db import make_engine, upgrade
    from stackwatch.store.events import EventStore

    engine = make_engine(db_url)
    upgrade(engine, "0001_events")
    old = EventStore(engine)
    body = {"event_type": "compute.instance.create.end", "message_id": "m-0001", "timestamp": "2026-11-22 02:02:49",
            "payload": {"instance_id": "vm-1", "note": "kept \u00e9", "nested": {"a": [1, 2]}}}
    Catcher(old, ProviderConfig(name="lab")).catch([RawMessage(body=orjson.dumps(body))])
    upgrade(engine)  # to every head: 0002, 0003, fleece
    event = EventStore(engine).get("m-0001", "lab")
    assert event is not None and event.payload == body["payload"] and event.vm_ref == "vm-1"
    with engine.connect() as conn:
        from sqlalchemy import inspect

        names = {ix["name"] for ix in inspect(conn).get_indexes("events")}
    assert "ix_events_group_time" not in names and {"ix_events_vm_time", "ix_events_host_time"} <= names
    engine.dispose()


@pytest.mark.parametrize("size", [5, 100, 101, 450])  # both PostgreSQL write paths: VALUES up to 100, COPY above
def test_batches_of_every_size_store_nul_text_once(store, size):
    def body(i: int) -> bytes:
        return orjson.dumps({"event_type": "compute.instance.update", "message_id": f"m-{i}",
                             "publisher_id": "nova\u0000compute", "timestamp": "2026-11-22 02:02:49.708327",
                             "payload": {"instance_id": f"vm-{i}", "display_name": "a\u0000b"}})

    catcher = Catcher(store, ProviderConfig(name="lab", events=EventsConfig(flood=FloodConfig(window_seconds=0))))
    half = catcher.catch([RawMessage(body=body(i)) for i in range(0, size, 2)])
    full = catcher.catch([RawMessage(body=body(i)) for i in range(size)])
    assert half.stored + full.stored == size == store.count("lab")
    assert full.duplicates == len(range(0, size, 2))
    event = store.get(f"m-{size - 1}", "lab")
    assert event.vm_ref == f"vm-{size - 1}" and event.publisher_id.startswith("nova")
    assert event.payload["display_name"] == ("a\ufffdb" if store.engine.dialect.name == "postgresql" else "a\u0000b")


def test_concurrent_writers_keep_every_collapsed_count(store):
    """Two transactions at once (PostgreSQL's default): each batch's flood counts land on an event of that
    batch, committed with it, so no writer waits for another and no count is lost between them."""
    from stackwatch.events.pipeline import PipelinedCatcher

    provider = ProviderConfig(name="lab", events=EventsConfig(flood=FloodConfig(window_seconds=600, threshold=5)))
    catcher = Catcher(store, provider)
    bodies = [
        orjson.dumps({"event_type": "compute.instance.update", "message_id": f"m-{i:03d}",
                      "payload": {"instance_id": "vm-storm"}})
        for i in range(100)
    ]
    pipe = PipelinedCatcher(catcher, writers=2)
    reports = []
    for start in range(0, 100, 10):  # ten batches; the first holds the 5 under the threshold
        reports += [r for r, _ in pipe.submit([RawMessage(body=b) for b in bodies[start : start + 10]])]
    reports += [r for r, _ in pipe.drain()]
    pipe.close()
    # batch 1: m-000..m-004 stored, 5 counted on m-004; batches 2-10: the first stored, 9 counted on it
    assert sum(r.stored for r in reports) == 5 + 9 == store.count("lab")
    assert sum(r.collapsed for r in reports) == 5 + 9 * 9
    assert store.collapsed_count("m-004", "lab") == 5
    assert [store.collapsed_count(f"m-{i:03d}", "lab") for i in range(10, 100, 10)] == [9] * 9
    events = store.query(EventQuery(provider="lab", limit=1000))
    assert len(events) + sum(e.collapsed_count for e in events) == 100


@pytest.mark.parametrize("size", [3, 150, 1200])
def test_a_batch_mixing_stored_and_new_events_reports_exactly_the_new_ones(store, size):
    """SQLite finds the new rows of a batch from its rowids, PostgreSQL from RETURNING: both must name exactly
    the new events, in input order, whatever the batch's mix and size (small, staged and chunked paths)."""
    catcher = Catcher(store, ProviderConfig(name="lab", events=EventsConfig(flood=FloodConfig(window_seconds=0))))

    def body(i: int) -> RawMessage:
        return RawMessage(orjson.dumps({"event_type": "compute.instance.update", "message_id": f"mix-{size}-{i}",
                                        "timestamp": "2026-11-22 02:02:49.708327",
                                        "payload": {"instance_id": f"vm-{i}"}}))

    first = catcher.catch([body(i) for i in range(0, size, 3)])  # every third one stored ahead
    mixed = [body(i) for i in range(size)] + [body(1)]  # and one repeated inside the batch
    report = catcher.catch(mixed)
    expected = [f"mix-{size}-{i}" for i in range(size) if i % 3]
    assert [e.message_id for e in report.stored_events] == expected
    assert [e.vm_ref for e in report.stored_events] == [f"vm-{i}" for i in range(size) if i % 3]
    assert report.stored == len(expected) and report.duplicates == len(mixed) - len(expected)
    assert store.count("lab") == first.stored + report.stored == size


@pytest.mark.postgres
def test_a_raw_at_sign_in_the_database_password_connects(pg_database):
    """`postgresql://user:p@ss@host/db`: the user-info ends at the last `@` (the server here trusts any password)."""
    from stackwatch.store.db import make_engine

    url = pg_database.replace("postgresql://postgres@", "postgresql://postgres:p@ss@w0rd@")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_user").scalar() == "postgres"
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_collapsed_count_is_written_through_the_unique_index_on_a_new_postgresql_table(store):
    """PostgreSQL without statistics for `events` (autovacuum off, or a young table) planned the collapsed
    count's UPDATE on ix_events_provider_time and read every event of the provider; the store gathers them."""
    from stackwatch.config.settings import EventsConfig, FloodConfig, ProviderConfig
    from stackwatch.events.catcher import Catcher
    from stackwatch.events.model import RawMessage

    catcher = Catcher(store, ProviderConfig(name="lab", events=EventsConfig(flood=FloodConfig(window_seconds=0))))
    catcher.catch([RawMessage(body=orjson.dumps({"event_type": "compute.instance.update", "message_id": f"m-{i}",
                                                 "payload": {"instance_id": f"vm-{i}"}})) for i in range(1200)])
    with store.engine.connect() as conn:
        plan = "\n".join(conn.exec_driver_sql(
            "EXPLAIN UPDATE events SET collapsed_count = collapsed_count + 1 "
            "WHERE provider = 'lab' AND message_id = 'm-7'").scalars())
    assert "uq_events_provider_message" in plan, plan
