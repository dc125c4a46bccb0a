"""The end-to-end secret scan of tests/integration/test_no_secrets.py against devcloud's real Keystone, Nova
and Glance: the clouds.yaml password and every Keystone token stay out of every log line, API response and
database row while serve, a worker catcher, `refresh` and a fleece of a Glance image run at debug."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import quote

import httpx
import pytest
import yaml

from tests.integration.test_no_secrets import (
    Daemon,
    Evidence,
    Secret,
    base_env,
    delete_broker_objects,
    dump_database,
    free_port,
    make_secret,
    run,
    wait_for,
    walk_api,
)

pytestmark = [pytest.mark.devcloud, pytest.mark.postgres, pytest.mark.slow]


def _wait_server(conn, server_id: str, status: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = conn.compute.get_server(server_id)
        assert s.status != "ERROR", s.fault
        if s.status == status and not s.task_state:
            return
        time.sleep(0.3)
    raise AssertionError(f"server {server_id} not {status} within {timeout} s")


@pytest.mark.timeout(1800)
def test_devcloud_refresh_and_fleece_leak_nothing(tmp_path, pg_database, devcloud_cloud, devcloud_conn):
    """serve (its first full refresh authenticates to the real Keystone), worker catcher on devcloud's broker
    while Nova boots and deletes a server, `refresh`, and a fleece of Glance's image: neither clouds.yaml's
    password nor any Keystone token in any output, API response or database row."""
    info, conn = devcloud_cloud, devcloud_conn
    admin_url = pg_database
    db_name = admin_url.rsplit("/", 1)[1]
    cloud_cfg = yaml.safe_load(info.clouds_yaml.read_text())["clouds"][info.cloud]
    password = cloud_cfg["auth"]["password"]
    cloud_pw = Secret("devcloud clouds.yaml password", password, password)
    db_pw = make_secret("database password", "Db@", ":x/%")
    tag = uuid.uuid4().hex[:10]
    queue = f"stackwatch-nosecrets-{tag}"
    port = free_port()
    config = tmp_path / "stackwatch.yaml"
    config.write_text(yaml.safe_dump({
        "database": f"postgresql://postgres:{quote(db_pw.value, safe='')}@127.0.0.1:5432/{db_name}",
        "data_dir": str(tmp_path / "data"),
        "api": {"host": "127.0.0.1", "port": port},
        "providers": [{
            "name": "dc",
            "cloud": info.cloud,
            "events": {"monitor": "amqp", "amqp": {"urls": [info.amqp_url], "exchanges": ["nova"], "queue": queue}},
        }],
    }))
    env = base_env(tmp_path, config, info.clouds_yaml)
    debug_env = {**env, "STACKWATCH_LOG_LEVEL": "debug"}
    evidence = Evidence()
    logs = tmp_path / "logs"
    logs.mkdir()
    image = conn.image.find_image("cirros-fake")
    flavor = conn.compute.find_flavor("m1.tiny")

    serve = Daemon("serve", ["serve", "--log-level", "debug"], env, logs)
    worker = None
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            wait_for("serve to answer /healthz", lambda: client.get("/healthz").status_code == 200, 120, [serve])
            # finished, not begun: targeted refreshes wait for it, and a server that lived and went meanwhile
            # would never be seen (its refresh would find it gone)
            wait_for("serve's first full refresh", lambda: any(
                '"msg":"inventory refresh"' in line and '"mode":"full"' in line
                for line in serve.err.read_text(errors="replace").splitlines()), 300, [serve])
            worker = Daemon("worker catcher", ["worker", "catcher", "--provider", "dc", "--config", str(config),
                                               "--log-level", "debug", "--stats-every", "1"], env, logs)
            time.sleep(3)  # the worker's queue is the one serve declared: both consume Nova's notifications
            server = conn.compute.create_server(name=f"nosecrets-{tag}", image_id=image.id, flavor_id=flavor.id,
                                                networks="none")
            _wait_server(conn, server.id, "ACTIVE")
            conn.compute.delete_server(server)
            conn.compute.wait_for_delete(server, wait=120)
            events = wait_for("Nova's notifications in the API", lambda: [
                e for e in client.get("/api/v1/events", params={"provider": "dc", "vm": server.id}).json()
                if e["event_type"] in ("compute.instance.delete.end", "instance.delete.end")
            ] and client.get("/api/v1/events", params={"provider": "dc", "vm": server.id}).json(), 120,
                [serve, worker])
            assert run(evidence, "refresh", "refresh", "dc", env=debug_env, timeout=600) == 0
            assert run(evidence, "fleece", "fleece", f"glance:{image.id}", "--provider", "dc", "--store",
                       "--format", "json", env=debug_env, timeout=600) == 2  # a 1 MiB image of zeros: no OS
            report = json.loads(evidence.texts[-2][1])[0]
            assert report["target"] == f"glance:{image.id}" and report["io"].get("requests")
            assert run(evidence, "provider list", "provider", "list", "--format", "json", env=debug_env) == 0

            kinds = [k["kind"] for k in client.get("/api/v1/inventory").json()]
            refs = []
            for kind in ("servers", "flavors", "images", "projects"):
                items = client.get(f"/api/v1/inventory/{kind}", params={"provider": "dc", "deleted": "true"}).json()
                refs += [str(i.get("id") or i.get("name")) for i in items[:1]]
            kept = client.get("/api/v1/fleece").json()
            ids_for = {
                "message_id": [e["message_id"] for e in events[:3]],
                "vm": [server.id],
                "host": sorted({e["host_ref"] for e in events if e["host_ref"]})[:1],
                "project": sorted({e["project_id"] for e in events if e["project_id"]})[:1],
                "provider": ["dc"],
                "report_id": [str(r["id"]) for r in kept],
                "target": [r["target"] for r in kept],
                "image_id": [image.id],
                "kind": ["servers", "flavors", "images", "projects", "vm"],
                "ref": refs,
            }
            seen = walk_api(client, evidence, ids_for)
            assert len(kinds) >= 10 and len(refs) == 4 and len(kept) == 1 and len(seen) >= 10
    finally:
        if worker is not None:
            worker.stop(evidence)
        serve.stop(evidence)
        delete_broker_objects(info.amqp_url, queue)
    rows = dump_database(admin_url, db_name, evidence)

    saved = evidence.save(tmp_path / "evidence.txt")
    leaks = evidence.leaks([cloud_pw, db_pw], tokens=True)
    assert leaks == [], f"{len(leaks)} secret(s) found (all output in {saved}):\n" + "\n".join(leaks[:40])
    # the scan looked at real output: keystoneauth's requests at debug, the refresh, the events
    assert any("keystoneauth" in ln and '"level":"debug"' in ln for ln in evidence.lines("serve stderr"))
    assert any("keystoneauth" in ln and '"level":"debug"' in ln for ln in evidence.lines("refresh stderr"))
    assert any('"level":"debug"' in ln for ln in evidence.lines("worker catcher stderr"))
    assert any("full refresh of dc" in ln for ln in evidence.lines("refresh stdout"))
    assert rows > len(events)
