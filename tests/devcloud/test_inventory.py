"""Full refresh against devcloud equals what the APIs list, through creates, stops, renames and deletes;
targeted refresh; CLI and REST views. Credentials never show up in outputs, logs or the database."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid

import pytest
import typer
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from stackwatch.cli import inventory as inventory_cli
from stackwatch.cli import refresh as refresh_cli
from stackwatch.inventory import query, refresh
from stackwatch.inventory.kinds import KINDS, kind_named
from stackwatch.store.db import open_store

pytestmark = [pytest.mark.devcloud, pytest.mark.timeout(1200)]
PROVIDER = "devcloud"
SKIPPED = {"volumes", "volume_snapshots", "stacks"}  # devcloud has no Cinder / Heat


def api_view(conn) -> dict[str, set[str]]:
    """What the APIs list, read directly with openstacksdk (not through the kinds table)."""
    return {
        "servers": {s.id for s in conn.compute.servers(all_projects=True)},
        "flavors": {f.id for f in conn.compute.flavors()},
        "hypervisors": {h.id for h in conn.compute.hypervisors()},
        "aggregates": {str(a.id) for a in conn.compute.aggregates()},
        "keypairs": {k.name for k in conn.compute.keypairs()},
        "availability_zones": {z.name for z in conn.compute.availability_zones()},
        "images": {i.id for i in conn.image.images()},
        "projects": {p.id for p in conn.identity.projects()},
        "networks": {n.id for n in conn.network.networks()},
        "subnets": {n.id for n in conn.network.subnets()},
        "ports": {p.id for p in conn.network.ports()},
        "routers": {r.id for r in conn.network.routers()},
        "floating_ips": {f.id for f in conn.network.ips()},
        "security_groups": {g.id for g in conn.network.security_groups()},
        "security_group_rules": {r.id for r in conn.network.security_group_rules()},
    }


def inventory_view(engine) -> dict[str, set[str]]:
    out = {}
    for k in KINDS:
        if k.name not in SKIPPED:
            out[k.name] = {str(d[k.uid]) for d in query.items(engine, k, provider=PROVIDER)}
    return out


def assert_converged(engine, conn) -> None:
    assert inventory_view(engine) == api_view(conn)


def wait_status(conn, server_id: str, status: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = conn.compute.get_server(server_id)
        if s.status == status and not s.task_state:
            return
        assert s.status != "ERROR", s.fault
        time.sleep(0.3)
    raise AssertionError(f"{server_id} not {status}")


def _cleanup(conn, created: dict[str, list[str]]) -> None:
    """Best effort: a failing cleanup must not hide the assertion that failed."""
    steps = [lambda i=i: conn.compute.delete_server(i, ignore_missing=True) for i in created["servers"]]
    for nid in created["networks"]:
        steps += [
            lambda p=p: conn.network.delete_port(p, ignore_missing=True) for p in conn.network.ports(network_id=nid)
        ]
        steps.append(lambda n=nid: conn.network.delete_network(n, ignore_missing=True))
    steps += [
        lambda i=i: conn.network.delete_security_group(i, ignore_missing=True) for i in created["security_groups"]
    ]
    steps += [lambda i=i: conn.compute.delete_aggregate(i, ignore_missing=True) for i in created["aggregates"]]
    steps += [lambda i=i: conn.image.delete_image(i, ignore_missing=True) for i in created["images"]]
    for step in steps:
        with contextlib.suppress(Exception):
            step()


@pytest.fixture
def store(tmp_path):
    st = open_store(f"sqlite:///{tmp_path / 'stackwatch.db'}")
    yield st
    st.dispose()


@pytest.fixture
def password(devcloud_cloud) -> str:
    return yaml.safe_load(devcloud_cloud.clouds_yaml.read_text())["clouds"]["devcloud"]["auth"]["password"]


def test_full_refresh_tracks_the_cloud(devcloud_conn, store, caplog, password):
    caplog.set_level(logging.DEBUG)
    conn, engine = devcloud_conn, store.engine
    r1 = refresh.full_refresh(engine, PROVIDER, conn)
    assert set(r1.notes) == SKIPPED and all("service in the catalog" in n for n in r1.notes.values())
    assert_converged(engine, conn)
    assert r1.kinds["hypervisors"].created == 1 and r1.kinds["flavors"].created >= 2

    image = conn.image.find_image("cirros-fake")
    tiny = conn.compute.find_flavor("m1.tiny")
    created = {"servers": [], "images": [], "networks": [], "aggregates": [], "security_groups": []}
    try:
        servers = [
            conn.compute.create_server(name=f"inv-{i}", image_id=image.id, flavor_id=tiny.id, networks="none")
            for i in range(3)
        ]
        created["servers"] = [s.id for s in servers]
        img = conn.image.create_image(name="inv-img", disk_format="raw", container_format="bare")
        created["images"].append(img.id)
        net = conn.network.create_network(name="inv-net")
        created["networks"].append(net.id)
        conn.network.create_subnet(network_id=net.id, cidr="10.77.0.0/24", ip_version=4, name="inv-subnet")
        port = conn.network.create_port(network_id=net.id, name="inv-port")
        agg = conn.compute.create_aggregate(name=f"inv-agg-{uuid.uuid4().hex[:6]}")
        created["aggregates"].append(agg.id)
        sg = conn.network.create_security_group(name="inv-sg")
        created["security_groups"].append(sg.id)
        for s in servers:
            wait_status(conn, s.id, "ACTIVE")

        r2 = refresh.full_refresh(engine, PROVIDER, conn)
        assert_converged(engine, conn)
        assert r2.kinds["servers"].created == 3 and r2.kinds["ports"].created == 1
        assert r2.kinds["security_group_rules"].created >= 2  # the new group's default egress rules
        vms = {d["id"]: d for d in query.items(engine, kind_named("vm"), provider=PROVIDER)}
        vm = vms[servers[0].id]
        project = conn.current_project_id
        assert vm["name"] == "inv-0" and vm["status"] == "ACTIVE" and vm["power_state"] == 1
        assert vm["host"] == "compute1" and vm["flavor_id"] == tiny.id and vm["image_id"] == image.id
        assert vm["project_id"] == project and vm["created_at"] and vm["updated_at"] and vm["deleted_at"] is None

        conn.compute.stop_server(servers[0])
        conn.compute.update_server(servers[1], name="inv-1-renamed")
        conn.compute.delete_server(servers[2])
        conn.network.delete_port(port)
        conn.image.delete_image(img)
        conn.compute.delete_aggregate(agg)
        conn.network.delete_security_group(sg)
        wait_status(conn, servers[0].id, "SHUTOFF")
        conn.compute.wait_for_delete(servers[2], wait=60)

        r3 = refresh.full_refresh(engine, PROVIDER, conn)
        assert_converged(engine, conn)
        assert r3.kinds["servers"].deleted == 1 and r3.kinds["servers"].updated >= 2
        assert r3.kinds["ports"].deleted == 1 and r3.kinds["images"].deleted == 1
        assert r3.kinds["security_group_rules"].deleted >= 2
        stopped = [c for c in query.changes(engine, servers[0].id) if c["action"] == "updated"][-1]["changes"]
        assert stopped["status"] == ["ACTIVE", "SHUTOFF"] and stopped["power_state"] == [1, 4]
        renamed = [c for c in query.changes(engine, servers[1].id) if c["action"] == "updated"][-1]["changes"]
        assert renamed["name"] == ["inv-1", "inv-1-renamed"]
        assert [c["action"] for c in query.changes(engine, servers[2].id)] == ["created", "deleted"]
        gone = {d["id"]: d for d in query.items(engine, kind_named("vm"), PROVIDER, deleted=True)}[servers[2].id]
        assert gone["deleted_at"] and gone["name"] == "inv-2"

        r4 = refresh.full_refresh(engine, PROVIDER, conn)
        assert r4.changes == 0, {k: v for k, v in r4.kinds.items() if v.created or v.updated or v.deleted}

        # targeted: one new server, then its deletion (404 -> deleted)
        s4 = conn.compute.create_server(name="inv-3", image_id=image.id, flavor_id=tiny.id, networks="none")
        created["servers"].append(s4.id)
        wait_status(conn, s4.id, "ACTIVE")
        t1 = refresh.targeted_refresh(engine, PROVIDER, conn, [refresh.parse_target(f"vm:{s4.id}")])
        assert t1.kinds["servers"].created == 1 and t1.kinds["servers"].deleted == 0
        assert t1.api_calls <= 3, t1.api_calls
        assert_converged(engine, conn)
        conn.compute.delete_server(s4)
        conn.compute.wait_for_delete(s4, wait=60)
        t2 = refresh.targeted_refresh(engine, PROVIDER, conn, [refresh.parse_target(f"vm:{s4.id}")])
        assert t2.kinds["servers"].deleted == 1
        assert_converged(engine, conn)
    finally:
        _cleanup(conn, created)
    assert password not in caplog.text


def test_cli_and_api_views_hide_credentials(devcloud_cloud, devcloud_conn, tmp_path, monkeypatch, password):
    cfg = tmp_path / "stackwatch.yaml"
    cfg.write_text(yaml.safe_dump({"data_dir": str(tmp_path), "providers": [{"name": PROVIDER, "cloud": "devcloud"}]}))
    monkeypatch.setenv("STACKWATCH_CONFIG", str(cfg))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(devcloud_cloud.clouds_yaml))
    runner = CliRunner()
    refresh_app = typer.Typer()
    refresh_app.command()(refresh_cli.refresh)
    res = runner.invoke(refresh_app, [PROVIDER, "--full"])
    assert res.exit_code == 0, res.output
    assert "full refresh of devcloud" in res.output and password not in res.output

    res = runner.invoke(inventory_cli.app, ["hypervisors", "--format", "json"])
    assert res.exit_code == 0, res.output
    hyps = json.loads(res.output)
    assert [h["name"] for h in hyps] == ["compute1"] and hyps[0]["deleted_at"] is None
    res = runner.invoke(inventory_cli.app, ["flavors", "--provider", "nope", "--format", "json"])
    assert json.loads(res.output) == []
    res = runner.invoke(inventory_cli.app, ["images"])
    assert res.exit_code == 0 and "images (1)" in res.output and "cirros" in res.output

    from stackwatch.api.app import create_app
    from stackwatch.config.settings import load_settings

    store = open_store(f"sqlite:///{tmp_path / 'stackwatch.db'}")
    try:
        client = TestClient(create_app(load_settings(cfg), store))
        body = client.get("/api/v1/inventory/flavors").json()
        assert {f["id"] for f in body} == {f.id for f in devcloud_conn.compute.flavors()}
        assert client.get("/api/v1/inventory/vm").status_code == 200
        assert client.get("/api/v1/inventory/nosuchkind").status_code == 404
        one = client.get("/api/v1/inventory/flavors/m1.tiny").json()
        assert len(one) == 1 and one[0]["kind"] == "flavors"
        assert password not in client.get("/api/v1/inventory/projects").text
    finally:
        store.dispose()
    assert password.encode() not in (tmp_path / "stackwatch.db").read_bytes()
