"""Kept reports: `stackwatch fleece` with a store saves each report; /api/v1/fleece lists and serves them.
On SQLite and on the real PostgreSQL (the shared `db_url` fixture); --provider resolution through config."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import typer
from fastapi.testclient import TestClient
from sqlalchemy import inspect
from typer.testing import CliRunner

from stackwatch.api.app import create_app
from stackwatch.cli.fleece import fleece, resolve_cloud
from stackwatch.config.settings import load_settings
from stackwatch.fleece.reports import FleeceReports, ids_of
from stackwatch.store.db import current_revision, open_store

app = typer.Typer()
app.command("fleece")(fleece)
app.command("noop")(lambda: None)


def _report(target: str, ok: bool = True) -> dict:
    return {
        "target": target,
        "os": {"id": "debian" if ok else None},
        "errors": [] if ok else ["no root filesystem found"],
        "io": {"image_size": 1000, "bytes_read": 10, "requests": 2, "cache_hits": 1, "seconds": 0.1},
    }


def test_migration_is_its_own_branch(db_url):
    store = open_store(db_url)
    try:
        assert "fleece_reports" in inspect(store.engine).get_table_names()
        current, heads = current_revision(store.engine)
        assert "fleece_0001" in current.split(",") and current == heads
    finally:
        store.dispose()


def test_save_list_filter_get(db_url):
    store = open_store(db_url)
    try:
        kept = FleeceReports(store.engine)
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        a = kept.save(_report("glance:img-1"), provider="p1", when=t0)
        b = kept.save(_report("instance:vm-9", ok=False), provider="p1", when=t0 + timedelta(1))
        c = kept.save(_report("glance:img-1"), provider="p2", when=t0 + timedelta(2))
        assert [r.id for r in kept.list()] == [c, b, a]  # newest first
        assert [r.id for r in kept.list(image_id="img-1")] == [c, a]
        assert [(r.id, r.ok, r.vm_id) for r in kept.list(vm_id="vm-9")] == [(b, False, "vm-9")]
        assert [r.id for r in kept.list(target="glance:img-1", provider="p1")] == [a]
        assert kept.get(b) == _report("instance:vm-9", ok=False)
        assert kept.get(10**9) is None
        assert kept.list(image_id="img-1")[0].io["bytes_read"] == 10
    finally:
        store.dispose()


def test_cli_keeps_reports_and_api_serves_them(built, db_url, monkeypatch):
    d, m = built
    image = m["images"]["rpm-lvm-xfs"]
    monkeypatch.setenv("STACKWATCH_DATABASE_URL", db_url)
    monkeypatch.delenv("STACKWATCH_CONFIG", raising=False)
    res = CliRunner().invoke(app, ["fleece", str(d / image["file"]), "--format", "json"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)[0]
    store = open_store(db_url)
    try:
        client = TestClient(create_app(load_settings(), store))
        listed = client.get("/api/v1/fleece", params={"target": str(d / image["file"])}).json()
        assert len(listed) == 1 and listed[0]["ok"] is True
        assert listed[0]["io"]["bytes_read"] == printed["io"]["bytes_read"]
        got = client.get(f"/api/v1/fleece/{listed[0]['id']}").json()
        assert got == printed  # the kept report is exactly what the CLI printed
        assert got["hostname"] == image["hostname"]
        assert len(got["packages"]) == len(m["roots"]["rpm"]["packages"])
        assert client.get("/api/v1/fleece", params={"image_id": "nope"}).json() == []
        assert client.get("/api/v1/fleece/999999").status_code == 404
    finally:
        store.dispose()


def test_no_store_when_none_is_configured(built, tmp_path, monkeypatch):
    d, m = built
    monkeypatch.delenv("STACKWATCH_DATABASE_URL", raising=False)
    monkeypatch.delenv("STACKWATCH_CONFIG", raising=False)
    monkeypatch.setenv("STACKWATCH_DATA_DIR", str(tmp_path / "data"))
    res = CliRunner().invoke(app, ["fleece", str(d / m["images"]["rpm-lvm-xfs"]["file"]), "-f", "json"])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "data").exists()  # nothing was opened, so nothing was created
    res = CliRunner().invoke(app, ["fleece", str(d / m["images"]["rpm-lvm-xfs"]["file"]), "-f", "json", "--store"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "data" / "stackwatch.db").exists()


def test_ids_of_targets():
    assert ids_of("glance:abc") == ("abc", None)
    assert ids_of("instance:0b1f") == (None, "0b1f")
    assert ids_of("/tmp/disk.qcow2") == (None, None)


@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "stackwatch.yaml"
    path.write_text("providers:\n  - name: east\n    cloud: no-such-cloud-east\n  - name: envonly\n")
    monkeypatch.setenv("STACKWATCH_CONFIG", str(path))
    monkeypatch.delenv("STACKWATCH_DATABASE_URL", raising=False)
    return path


def test_provider_means_a_configured_provider_then_a_cloud_name(config):
    cfg = load_settings()
    assert resolve_cloud(cfg, "east") == "no-such-cloud-east"
    assert resolve_cloud(cfg, "envonly") is None  # a provider without cloud: uses the OS_* variables
    assert resolve_cloud(cfg, "some-cloud") == "some-cloud"  # no such provider: a clouds.yaml name
    assert resolve_cloud(cfg, None) is None


def test_provider_reaches_openstack_as_its_cloud(config):
    """End to end through the worker: the provider's cloud is what openstacksdk is asked for."""
    res = CliRunner().invoke(app, ["fleece", "glance:0000", "--provider", "east", "-f", "json"])
    assert res.exit_code == 2
    errors = json.loads(res.stdout)[0]["errors"]
    assert any("cloud no-such-cloud-east" in e for e in errors), errors
