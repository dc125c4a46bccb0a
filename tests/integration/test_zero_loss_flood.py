"""Nothing acknowledged unless stored, with flood control on: a refused batch is retried and split without
counting a message twice or onto an event that was never stored (issue 12, section 1).

The refusal is the database's own: a trigger on `events` rejects a "poison" event, on SQLite and on the real
PostgreSQL, through the writer layouts `serve` and `worker catcher` use (in-process writer threads, and the
store process). Accounting helpers here are shared by the fault tests (test_zero_loss_faults.py).
"""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import create_engine, text

from stackwatch.config.settings import ProviderConfig
from stackwatch.events.catcher import Catcher
from stackwatch.events.model import RawMessage
from stackwatch.events.runner import CatcherRunner
from stackwatch.store.db import normalize_url, open_store
from tests.amqp.test_runner_unit import ListMonitor


def account(url: str, provider: str) -> dict[str, int]:
    """What the database holds for `provider`, read with plain SQL: rows, distinct ids, collapsed counts,
    quarantined messages. `rows + collapsed` is every event accounted for."""
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            rows, distinct, collapsed = conn.execute(text(
                "SELECT count(*), count(DISTINCT message_id), coalesce(sum(collapsed_count), 0) FROM events "
                "WHERE provider = :p"), {"p": provider}).one()
            quarantined = conn.execute(text("SELECT count(*) FROM quarantine WHERE provider = :p"),
                                       {"p": provider}).scalar_one()
    finally:
        engine.dispose()
    return {"rows": int(rows), "distinct": int(distinct), "collapsed": int(collapsed),
            "quarantined": int(quarantined)}


def refuse_poison(url: str) -> None:
    """A trigger that makes the database refuse any event whose payload mentions "poison"."""
    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text(
                "CREATE TRIGGER refuse_poison BEFORE INSERT ON events WHEN NEW.payload LIKE '%poison%' "
                "BEGIN SELECT RAISE(ABORT, 'poison refused by a trigger'); END"))
        else:
            conn.execute(text(
                "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.payload::text LIKE '%poison%' THEN RAISE EXCEPTION 'poison refused by a trigger'; END IF; "
                "RETURN NEW; END $$"))
            conn.execute(text("CREATE TRIGGER refuse_poison BEFORE INSERT ON events FOR EACH ROW "
                              "EXECUTE FUNCTION refuse_poison()"))
    engine.dispose()


def storm(n: int, poison: int | None = None, vm: str = "vm-storm") -> list[bytes]:
    """`n` events of one flood key (same type, same VM); number `poison` carries the word in its payload."""
    return [orjson.dumps({"event_type": "compute.instance.update", "message_id": f"storm-{i:05d}",
                          "payload": {"instance_id": vm, "note": "poison" if i == poison else f"n{i}"}})
            for i in range(n)]


@pytest.mark.parametrize("layout", ["thread", "process"])
@pytest.mark.parametrize("poison", [None, 10, 49, 120], ids=["clean", "stored", "anchor", "batch-anchor"])
def test_refused_batch_is_split_without_losing_or_recounting_flood(db_url, layout, poison):
    """240 events of one key in two batches, default flood control (50 per 10 s). Poison 10 is under the
    threshold; 49 is the event the next 70 are counted onto; 120 is the one that carries the second batch's
    count. The batch is refused three times, then split: each good event is stored or counted exactly once."""
    store = open_store(db_url, writer=layout)
    refuse_poison(db_url)
    provider = ProviderConfig(name="lab")
    assert provider.events.flood.window_seconds > 0 and provider.events.flood.threshold == 50  # the defaults
    bodies = storm(240, poison)
    monitor = ListMonitor(provider, [bodies[:120], bodies[120:]])
    runner = CatcherRunner(monitor, Catcher(store, provider), retry_min=0.01, retry_max=0.05,
                           writers=store.concurrent_writers).start()
    try:
        assert monitor.done.wait(60), (monitor.acked, vars(runner.stats))
    finally:
        runner.stop()
        store.dispose()
    assert monitor.acked == [1, 2]
    held = account(db_url, "lab")
    good = 240 - (poison is not None)
    assert held["rows"] == held["distinct"]
    assert held["rows"] + held["collapsed"] == good, held
    assert held["quarantined"] == (poison is not None), held
    # one row per event under the threshold, plus one carrying the count of the second batch
    assert held["rows"] == 51 - (poison == 10), held
    if poison is not None:
        check = open_store(db_url, migrate=False)
        try:
            [item] = check.quarantined("lab")
            assert b"poison" in item.raw and "poison refused by a trigger" in item.reason
            assert check.get(f"storm-{poison:05d}", "lab") is None
        finally:
            check.dispose()
    assert runner.stats.stored + runner.stats.collapsed + runner.stats.quarantined == 240, vars(runner.stats)


def test_a_refused_anchor_hands_its_count_to_the_next_event(db_url, store):
    """The store refuses the event a flood's count was aimed at, and the next two: the fourth carries it."""
    url = db_url
    refuse_poison(url)
    provider = ProviderConfig(name="lab", events={"flood": {"window_seconds": 60, "threshold": 2}})
    catcher = Catcher(store, provider)
    bodies = storm(10)
    for i in (1, 2, 3):  # storm-00001 is the anchor; 2 and 3 would inherit it in turn
        bodies[i] = bodies[i].replace(b'"n%d"' % i, b'"poison"')
    prepared = catcher.prepare([RawMessage(b, "test") for b in bodies])
    assert [r[0] for r in prepared.records] == ["storm-00000", "storm-00001"]
    assert prepared.collapsed_into == {("lab", "storm-00001"): 8}
    monitor = ListMonitor(provider, [bodies])
    runner = CatcherRunner(monitor, catcher, retry_min=0.01, retry_max=0.02, pipelined=False)
    assert runner._store(monitor._batches[0], prepared)
    held = account(url, "lab")
    assert held == {"rows": 2, "distinct": 2, "collapsed": 5, "quarantined": 3}, held
    assert store.collapsed_count("storm-00004", "lab") == 5  # the first good one after the refused three
    assert runner.stats.stored + runner.stats.collapsed + runner.stats.quarantined == 10


def test_a_collapsed_redelivery_in_the_same_batch_is_a_duplicate_not_a_count(store):
    provider = ProviderConfig(name="lab", events={"flood": {"window_seconds": 60, "threshold": 3}})
    bodies = storm(6)
    report = Catcher(store, provider).catch([RawMessage(b) for b in bodies + bodies[4:]])
    assert (report.stored, report.collapsed, report.duplicates) == (3, 3, 2)
    assert store.collapsed_count("storm-00002", "lab") == 3


def test_collapsed_count_in_cli_and_api(db_url, monkeypatch, tmp_path):
    """An operator accounts for every event without reading the database: `events list` (table and JSON),
    `events show --format json` and the API's event documents carry collapsed_count."""
    import json

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from stackwatch.api.app import create_app
    from stackwatch.cli.main import app
    from stackwatch.config.settings import load_settings

    monkeypatch.setenv("STACKWATCH_DATABASE_URL", db_url)
    monkeypatch.setenv("STACKWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("STACKWATCH_CONFIG", raising=False)
    flood = tmp_path / "flood.jsonl"
    flood.write_bytes(b"\n".join(storm(130)) + b"\n")
    cli = CliRunner()
    ingested = cli.invoke(app, ["events", "ingest", str(flood), "--provider", "lab", "--format", "json"])
    assert ingested.exit_code == 0, ingested.output
    assert json.loads(ingested.stdout)["collapsed"] == 80  # default threshold: 50 stored, 80 counted

    listed = cli.invoke(app, ["events", "list", "--provider", "lab", "--limit", "1000", "--format", "json"])
    docs = json.loads(listed.stdout)
    assert len(docs) == 50 and sum(d["collapsed_count"] for d in docs) == 80
    assert {d["message_id"]: d["collapsed_count"] for d in docs if d["collapsed_count"]} == {"storm-00049": 80}
    table = cli.invoke(app, ["events", "list", "--provider", "lab", "--limit", "1000"], env={"COLUMNS": "250"})
    assert table.exit_code == 0 and "collapsed" in table.stdout and "+80" in table.stdout, table.stdout
    shown = json.loads(cli.invoke(app, ["events", "show", "storm-00049", "--format", "json"]).stdout)
    assert shown["collapsed_count"] == 80

    store = open_store(db_url)
    try:
        client = TestClient(create_app(load_settings(), store))
        api_docs = client.get("/api/v1/events", params={"provider": "lab", "limit": 1000}).json()
        assert len(api_docs) + sum(d["collapsed_count"] for d in api_docs) == 130
        assert client.get("/api/v1/events/storm-00049").json()["collapsed_count"] == 80
        assert client.get("/api/v1/events/storm-00000").json()["collapsed_count"] == 0
    finally:
        store.dispose()
