"""A real OpenStack on loopback: every service answers, the catalog is usable, servers boot on the fake
driver, and Nova publishes legacy and versioned notifications on devcloud's own RabbitMQ."""

from __future__ import annotations

import json
import stat
import time

import pika
import pytest
import yaml
from typer.testing import CliRunner

from stackwatch import devcloud
from stackwatch.cli import devcloud as devcloud_cli
from stackwatch.devcloud import services

pytestmark = [pytest.mark.devcloud, pytest.mark.timeout(1200)]


def _pids() -> dict[str, int | None]:
    return {s.name: s.pid for s in devcloud.status().services}


def test_every_service_runs_and_answers(devcloud_cloud):
    st = devcloud.status()
    assert st.up, [s for s in st.services if not s.ok]
    by_name = {s.name: s for s in st.services}
    assert set(by_name) == {"rabbitmq", "postgresql"} | {s.name for s in services.ALL}
    # each API's health URL answers with its own code: Glance's root lists its versions (300 Multiple Choices)
    answers = {svc.name: by_name[svc.name].http_status for svc in services.ALL if svc.uwsgi}
    assert answers == {"keystone": 200, "glance-api": 300, "neutron-api": 200, "placement-api": 200, "nova-api": 200}
    assert st.cloud is not None and st.cloud.clouds_yaml == devcloud_cloud.clouds_yaml


def test_clouds_yaml_names_devcloud_and_is_private(devcloud_cloud):
    path = devcloud_cloud.clouds_yaml
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cloud = yaml.safe_load(path.read_text())["clouds"]["devcloud"]
    assert cloud["auth"]["auth_url"] == "http://127.0.0.1:5000/v3"
    assert cloud["region_name"] == "RegionOne"
    assert devcloud_cloud.env() == {"OS_CLIENT_CONFIG_FILE": str(path), "OS_CLOUD": "devcloud"}
    assert devcloud_cloud.amqp_url == "amqp://guest:guest@127.0.0.1:5682/"


def test_catalog_hypervisor_and_seed_objects(devcloud_conn):
    types = {s["type"] for s in devcloud_conn.service_catalog}
    assert {"identity", "image", "network", "placement", "compute"} <= types
    assert [h.name for h in devcloud_conn.compute.hypervisors()] == ["compute1"]
    assert {"m1.tiny", "m1.small"} <= {f.name for f in devcloud_conn.compute.flavors()}
    image = devcloud_conn.image.find_image("cirros-fake")
    assert image is not None and image.status == "active"
    # neutron API-only on PostgreSQL: listing ports used to fail (port_forwardings mapper gotcha)
    assert isinstance(list(devcloud_conn.network.ports()), list)
    assert isinstance(list(devcloud_conn.network.security_groups()), list)


def test_project_networks_and_ports_can_be_created(devcloud_conn):
    # tenant networks are vxlan (segment ids only, no agents); ports get an address but stay unbound
    c = devcloud_conn
    net = c.network.create_network(name="dc-net")
    try:
        assert net.provider_network_type == "vxlan"
        c.network.create_subnet(network_id=net.id, cidr="10.99.0.0/24", ip_version=4)
        port = c.network.create_port(network_id=net.id, name="dc-port")
        assert port.fixed_ips and port.fixed_ips[0]["ip_address"].startswith("10.99.0.")
        c.network.delete_port(port)
    finally:
        c.network.delete_network(net)
    assert c.network.find_network("dc-net") is None


def _notification_consumer(amqp_url: str):
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    ch.exchange_declare("nova", exchange_type="topic", durable=False)
    q = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
    for key in ("notifications.#", "versioned_notifications.#"):
        ch.queue_bind(q, "nova", routing_key=key)
    return conn, ch, q


def _drain(ch, q) -> list[tuple[str, str]]:
    seen = []
    while True:
        method, _props, body = ch.basic_get(q, auto_ack=True)
        if method is None:
            return seen
        msg = json.loads(body)
        if "oslo.message" in msg:
            msg = json.loads(msg["oslo.message"])
        seen.append((method.routing_key, msg["event_type"]))


def _wait(conn, server_id: str, status: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = conn.compute.get_server(server_id)
        if s.status == status and not s.task_state:
            return s
        assert s.status != "ERROR", s.fault
        time.sleep(0.3)
    raise AssertionError(f"server {server_id} not {status} within {timeout} s")


def test_server_lifecycle_publishes_both_notification_formats(devcloud_cloud, devcloud_conn):
    amqp, ch, q = _notification_consumer(devcloud_cloud.amqp_url)
    c = devcloud_conn
    try:
        image = c.image.find_image("cirros-fake")
        flavor = c.compute.find_flavor("m1.tiny")
        server = c.compute.create_server(name="dc-lifecycle", image_id=image.id, flavor_id=flavor.id, networks="none")
        s = _wait(c, server.id, "ACTIVE")
        assert s.compute_host == "compute1" and s.power_state == 1
        c.compute.stop_server(server)
        assert _wait(c, server.id, "SHUTOFF").power_state == 4
        c.compute.delete_server(server)
        c.compute.wait_for_delete(server, wait=60)
        seen: list[tuple[str, str]] = []
        deadline = time.monotonic() + 20
        want = {
            ("notifications.info", "compute.instance.create.end"),
            ("versioned_notifications.info", "instance.create.end"),
            ("versioned_notifications.info", "instance.power_off.end"),
            ("versioned_notifications.info", "instance.delete.end"),
        }
        while time.monotonic() < deadline and not want <= set(seen):
            seen += _drain(ch, q)
            time.sleep(0.2)
        assert want <= set(seen), sorted(set(seen))
    finally:
        amqp.close()


def test_up_again_is_a_no_op(devcloud_cloud):
    before = _pids()
    again = devcloud.up()
    assert again.clouds_yaml == devcloud_cloud.clouds_yaml
    assert _pids() == before


def test_cli_status_and_up_print_env_without_password(devcloud_cloud):
    password = yaml.safe_load(devcloud_cloud.clouds_yaml.read_text())["clouds"]["devcloud"]["auth"]["password"]
    runner = CliRunner()
    res = runner.invoke(devcloud_cli.app, ["status", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["up"] is True and len(doc["services"]) == 10
    res_up = runner.invoke(devcloud_cli.app, ["up"])
    assert res_up.exit_code == 0, res_up.output
    assert f"export OS_CLIENT_CONFIG_FILE={devcloud_cloud.clouds_yaml}" in res_up.output
    assert "export OS_CLOUD=devcloud" in res_up.output
    assert "amqp://guest:guest@127.0.0.1:5682/" in res_up.output
    assert password not in res.output and password not in res_up.output
