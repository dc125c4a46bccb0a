"""A VM's timeline by name or uuid: events from the stream and inventory changes side by side."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from stackwatch.api.app import create_app
from stackwatch.cli.main import app
from stackwatch.config.settings import ProviderConfig, load_settings
from stackwatch.events.catcher import Catcher
from stackwatch.events.model import RawMessage
from stackwatch.inventory import refresh
from stackwatch.inventory.kinds import kind_named
from stackwatch.store.db import open_store
from tests.conftest import SAMPLES

VM = "178b0921-8f85-4257-88b6-2e743b5a975c"
T0 = datetime(2026, 11, 22, 2, 0, tzinfo=UTC)


def _server(name: str, status: str) -> dict:
    return {"id": VM, "name": name, "status": status, "project_id": "6f70656e737461636b20342065766572"}


def _load(db_url):
    store = open_store(db_url)
    raws = [p.read_bytes() for p in sorted((SAMPLES / "oslo_wire").glob("*.body.json"))]
    Catcher(store, ProviderConfig(name="lab")).catch([RawMessage(body=r, source="amqp") for r in raws])
    servers = kind_named("vm")
    with Session(store.engine) as s, s.begin():
        refresh.apply_listing(s, "lab", servers, {VM: _server("web-1", "BUILD")}, T0, None)
    with Session(store.engine) as s, s.begin():
        refresh.apply_listing(s, "lab", servers, {VM: _server("web-1", "ACTIVE")}, T0 + timedelta(seconds=5), None)
    return store


def test_timeline_by_name_shows_events_and_changes(db_url, monkeypatch):
    store = _load(db_url)
    monkeypatch.setenv("STACKWATCH_DATABASE_URL", db_url)
    monkeypatch.delenv("STACKWATCH_CONFIG", raising=False)
    runner = CliRunner()
    by_name = runner.invoke(app, ["events", "timeline", "--vm", "web-1", "--format", "json"])
    assert by_name.exit_code == 0, by_name.output
    doc = json.loads(by_name.stdout)
    by_uuid = json.loads(runner.invoke(app, ["events", "timeline", "--vm", VM, "--format", "json"]).stdout)
    assert doc["events"] == by_uuid["events"] and doc["vm"] == VM
    assert [e["event_type"] for e in doc["events"]] == [
        "compute.instance.create.end", "compute.instance.create.error", "instance.create.end",
        "compute.instance.delete.end"]
    assert [c["action"] for c in doc["changes"]] == ["created", "updated"]
    assert "status" in doc["changes"][1]["changes"]
    table = runner.invoke(app, ["events", "timeline", "--vm", "web-1"])
    assert "inventory changes" in table.stdout and "updated" in table.stdout

    api = TestClient(create_app(load_settings(), store)).get("/api/v1/timeline", params={"vm": "web-1"}).json()
    assert api["vm"] == VM and [c["action"] for c in api["changes"]] == ["created", "updated"]
    assert len(api["events"]) == 4
    store.dispose()


def test_ambiguous_name_is_refused(db_url, monkeypatch):
    store = _load(db_url)
    other = "0e0e0e0e-0000-4000-8000-000000000001"
    with Session(store.engine) as s, s.begin():
        refresh.apply_listing(s, "lab", kind_named("vm"), {VM: _server("web-1", "ACTIVE"),
                                                           other: {**_server("web-1", "ACTIVE"), "id": other}},
                              T0 + timedelta(seconds=9), None)
    monkeypatch.setenv("STACKWATCH_DATABASE_URL", db_url)
    result = CliRunner().invoke(app, ["events", "timeline", "--vm", "web-1"])
    assert result.exit_code == 2 and other in result.output
    api = TestClient(create_app(load_settings(), store)).get("/api/v1/timeline", params={"vm": "web-1"})
    assert api.status_code == 409
    store.dispose()
