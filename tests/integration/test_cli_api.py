"""The CLI and the REST API over one store: exact JSON field names, filters, timeline, errors, serve."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from stackwatch import __version__
from stackwatch.api.app import create_app
from stackwatch.cli.main import app
from stackwatch.config.settings import load_settings
from stackwatch.events.model import EVENT_JSON_FIELDS
from stackwatch.store.db import open_store
from tests.conftest import SAMPLES

CONTRACT_FIELDS = [
    "message_id", "provider", "source", "event_type", "timestamp", "received_at", "publisher_id", "priority",
    "project_id", "user_id", "request_id", "vm_ref", "host_ref", "image_ref", "volume_ref", "snapshot_ref",
    "network_ref", "subnet_ref", "port_ref", "router_ref", "floating_ip_ref", "security_group_ref", "stack_ref",
    "availability_zone", "group", "level", "payload",
]
VM = "178b0921-8f85-4257-88b6-2e743b5a975c"
runner = CliRunner()


@pytest.fixture
def loaded(db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("STACKWATCH_DATABASE_URL", db_url)
    monkeypatch.setenv("STACKWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("STACKWATCH_CONFIG", raising=False)
    paths = [str(p) for p in sorted((SAMPLES / "oslo_wire").glob("*.body.json"))]
    paths += [str(SAMPLES / "oslo_wire" / "listener_view.json")]
    paths += [str(p) for p in sorted((SAMPLES / "legacy").glob("*/*.json"))]
    result = runner.invoke(app, ["events", "ingest", *paths, "--provider", "lab", "--format", "json"])
    assert result.exit_code == 0, result.output
    return db_url


def cli_json(*args: str):
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_contract_field_names():
    assert list(EVENT_JSON_FIELDS) == CONTRACT_FIELDS


def test_cli_list_show_count_timeline(loaded):
    events = cli_json("events", "list", "--provider", "lab", "--limit", "1000")
    assert events and all(list(e) == [*CONTRACT_FIELDS, "collapsed_count"] for e in events)
    count = runner.invoke(app, ["events", "count", "--provider", "lab"])
    assert int(count.stdout.strip()) == len(events)

    shown = cli_json("events", "show", "502d7457-7c67-44f8-bce3-24be092974d2")
    assert shown["event_type"] == "compute.instance.create.end"
    assert shown["timestamp"] == "2026-11-22T02:02:49.708327+00:00"
    assert shown["vm_ref"] == VM and shown["group"] == "creation" and shown["image_ref"] is None

    vm_events = cli_json("events", "list", "--vm", VM)
    assert {e["vm_ref"] for e in vm_events} == {VM}
    assert [e["event_type"] for e in vm_events] == [
        "compute.instance.create.end", "compute.instance.create.error", "instance.create.end",
        "compute.instance.delete.end",
    ]
    created = cli_json("events", "list", "--type", "compute.instance.*", "--group", "creation")
    assert created and all(e["event_type"].startswith("compute.instance.") and e["group"] == "creation"
                           for e in created)
    assert "compute.instance.create.end" in {e["event_type"] for e in created}
    recent = cli_json("events", "list", "--since", "2026-01-01T00:00:00Z")
    assert {e["timestamp"][:4] for e in recent} == {"2026"}

    tl = cli_json("events", "timeline", "--vm", VM)
    assert tl["groups"] == {"creation": 3, "deletion": 1}
    table = runner.invoke(app, ["events", "timeline", "--vm", VM])
    assert table.exit_code == 0 and "compute.instance.delete.end" in table.stdout and "deletion" in table.stdout

    missing = runner.invoke(app, ["events", "show", "nope"])
    assert missing.exit_code == 1
    bad_group = runner.invoke(app, ["events", "list", "--group", "sideways"])
    assert bad_group.exit_code == 2 and "sideways" in bad_group.output


def test_api_events(loaded):
    cfg = load_settings()
    store = open_store(loaded)
    client = TestClient(create_app(cfg, store))
    assert client.get("/healthz").json()["status"] == "ok"
    events = client.get("/api/v1/events", params={"provider": "lab", "limit": 1000}).json()
    assert events and all(list(e) == [*CONTRACT_FIELDS, "collapsed_count"] for e in events)
    cli_events = cli_json("events", "list", "--provider", "lab", "--limit", "1000")
    assert [e["message_id"] for e in events] == [e["message_id"] for e in cli_events]
    by_vm = client.get("/api/v1/events", params={"vm": VM, "type": "compute.instance.*"}).json()
    assert [e["event_type"] for e in by_vm] == [
        "compute.instance.create.end", "compute.instance.create.error", "compute.instance.delete.end"]
    one = client.get("/api/v1/events/0ca227e9-481f-49d1-a771-9edbb5ddf663").json()
    assert one["event_type"] == "compute.instance.delete.end" and one["group"] == "deletion"
    assert client.get("/api/v1/events/nope").status_code == 404
    assert client.get("/api/v1/events", params={"group": "sideways"}).status_code == 422
    assert client.get("/api/v1/events", params={"limit": 0}).status_code == 422
    tl = client.get("/api/v1/timeline", params={"vm": VM}).json()
    assert tl["groups"] == {"creation": 3, "deletion": 1}
    assert client.get("/api/v1/openapi.json").status_code == 404  # the spec is served at /openapi.json only
    assert client.get("/openapi.json").json()["info"]["title"] == "stackwatch"
    store.dispose()


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("providers:\n  - name: lab\n    events: {monitor: carrier-pigeon}\n", "providers.0.events.monitor"),
        ("providers:\n  - name: lab\n    colour: blue\n", "providers.0.colour"),
        ("providers:\n  - name: lab\n    events: {filter: {deny: ['(']}}\n", "providers.0.events.filter.deny"),
        ("providers: [{name: a}, {name: a}]\n", "unique"),
        ("- just\n- a list\n", "mapping at the top level"),
        ("providers: [\n", "not valid YAML"),
    ],
)
def test_bad_config_names_the_key(tmp_path, monkeypatch, yaml_text, expected):
    path = tmp_path / "stackwatch.yaml"
    path.write_text(yaml_text)
    monkeypatch.delenv("STACKWATCH_DATABASE_URL", raising=False)
    result = runner.invoke(app, ["--config", str(path), "events", "count"])
    assert result.exit_code == 2
    assert expected in " ".join(result.output.split())  # rich wraps the line at the terminal's width
    os.environ.pop("STACKWATCH_CONFIG", None)


def test_config_file_and_env_override(tmp_path, monkeypatch):
    path = tmp_path / "stackwatch.yaml"
    path.write_text(f"database: sqlite:///{tmp_path}/from-file.db\nproviders:\n  - name: lab\n    cloud: lab\n"
                    "    events:\n      monitor: none\n      filter: {deny: ['^identity\\.authenticate$']}\n")
    monkeypatch.setenv("STACKWATCH_CONFIG", str(path))
    monkeypatch.delenv("STACKWATCH_DATABASE_URL", raising=False)
    cfg = load_settings()
    assert cfg.database_url.endswith("from-file.db")
    assert cfg.provider("lab").events.filter.deny == [r"^identity\.authenticate$"]
    monkeypatch.setenv("STACKWATCH_DATABASE_URL", f"sqlite:///{tmp_path}/from-env.db")
    assert load_settings().database_url.endswith("from-env.db")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_on_embedded_default(tmp_path):
    """`stackwatch serve` with no configuration: SQLite in the data dir, API on 127.0.0.1."""
    port = _free_port()
    env = {**os.environ, "STACKWATCH_DATA_DIR": str(tmp_path / "data")}
    env.pop("STACKWATCH_DATABASE_URL", None)
    env.pop("STACKWATCH_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "stackwatch", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "serve did not answer within 30 s"
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/events").json() == []
        assert (tmp_path / "data" / "stackwatch.db").exists()
    finally:
        proc.terminate()
        proc.wait(10)


def test_healthz_pings_without_reading_the_events(loaded):
    """`/healthz` costs one `SELECT 1` whatever the store holds: no COUNT(*), no events table."""
    from sqlalchemy import event

    store = open_store(loaded)
    client = TestClient(create_app(load_settings(), store))
    statements: list[str] = []
    listener = lambda _conn, _cur, statement, *_rest: statements.append(statement)  # noqa: E731
    event.listen(store.engine, "before_cursor_execute", listener)
    try:
        health = client.get("/healthz")
    finally:
        event.remove(store.engine, "before_cursor_execute", listener)
        store.dispose()
    assert health.status_code == 200 and health.json() == {"status": "ok", "version": __version__, "database": "ok"}
    assert statements == ["SELECT 1"]


def test_healthz_reports_an_unreachable_database():
    from stackwatch.store.db import make_engine
    from stackwatch.store.events import EventStore

    closed_port = _free_port()  # nothing listens there
    store = EventStore(make_engine(f"postgresql://postgres@127.0.0.1:{closed_port}/none"))
    health = TestClient(create_app(load_settings(), store)).get("/healthz")
    assert health.status_code == 503
    assert health.json() == {"status": "degraded", "database": "unavailable: OperationalError"}


def test_a_database_at_the_code_heads_is_not_migrated_again(db_url, tmp_path):
    """`open_store` reads alembic_version and skips Alembic (and its import) when nothing is to migrate."""
    from stackwatch.store.db import at_heads, code_heads, make_engine

    fresh = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    assert not at_heads(fresh)  # no alembic_version table yet: Alembic creates everything
    fresh.dispose()
    store = open_store(db_url)
    try:
        assert at_heads(store.engine)
        with store.engine.begin() as conn:  # as if the fleece branch had not been migrated yet
            conn.exec_driver_sql("DELETE FROM alembic_version WHERE version_num = 'fleece_0001'")
        assert not at_heads(store.engine)
    finally:
        store.dispose()
    assert code_heads() and "fleece_0001" in code_heads()


def test_web_timeline_page(loaded):
    client = TestClient(create_app(load_settings(), open_store(loaded)))
    page = client.get("/timeline")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/api/v1/timeline?" in page.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/console"


def test_cli_ingest_writers_agree(db_url, monkeypatch, tmp_path):
    """`events ingest --writer process` (a store process) stores exactly what the in-process writer stores."""
    monkeypatch.setenv("STACKWATCH_DATABASE_URL", db_url)
    monkeypatch.setenv("STACKWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("STACKWATCH_CONFIG", raising=False)
    paths = [str(p) for p in sorted((SAMPLES / "legacy").glob("*/*.json"))]
    first = runner.invoke(app, ["events", "ingest", *paths, "--provider", "a", "--writer", "process", "--format",
                                "json"])
    second = runner.invoke(app, ["events", "ingest", *paths, "--provider", "b", "--writer", "thread", "--format",
                                 "json"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert json.loads(first.stdout) == json.loads(second.stdout) and json.loads(first.stdout)["stored"] > 0
    store = open_store(db_url)
    assert store.count("a") == store.count("b") == json.loads(first.stdout)["stored"]
    store.dispose()
    bad = runner.invoke(app, ["events", "ingest", *paths, "--writer", "fork"])
    assert bad.exit_code == 2 and "not auto, thread or process" in bad.output
