"""Every real sample converts; the fields are checked against the sample itself, read independently."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest

from stackwatch.events.convert import Converter
from stackwatch.events.model import GROUPS, LEVELS
from stackwatch.switchboard.routes import RoutingTable
from tests.conftest import SAMPLES, sample_files

ROUTES = RoutingTable.load()
CONVERTER = Converter(ROUTES)

# The timeline group each family must land in: the spec of the routing table, written out by hand.
EXPECTED_GROUP_PREFIXES: list[tuple[str, str]] = [
    ("compute.instance.create", "creation"), ("instance.create", "creation"),
    ("compute.instance.delete", "deletion"), ("instance.delete", "deletion"), ("instance.soft_delete", "deletion"),
    ("instance.power_on", "power"), ("instance.power_off", "power"), ("instance.reboot", "power"),
    ("instance.pause", "power"), ("instance.unpause", "power"), ("instance.suspend", "power"),
    ("instance.resume", "power"), ("instance.shutdown", "power"), ("instance.shelve", "power"),
    ("instance.unshelve", "power"), ("instance.restore", "power"), ("instance.trigger_crash_dump", "power"),
    ("instance.live_migration", "migration"), ("instance.resize", "migration"), ("instance.evacuate", "migration"),
    ("compute.instance.finish_resize", "migration"), ("compute.instance.resize", "migration"),
    ("compute_task.migrate_server", "migration"),
    ("instance.snapshot", "snapshot"),
    ("instance.volume_", "storage"), ("instance.share_", "storage"), ("volume.usage", "storage"),
    ("instance.interface_", "network"),
    ("instance.rebuild", "configuration"), ("instance.rescue", "configuration"), ("instance.update", "configuration"),
    ("instance.unrescue", "configuration"), ("compute_task.build_instances", "creation"),
    ("compute_task.rebuild_server", "configuration"), ("instance.lock", "configuration"),
    ("instance.unlock", "configuration"), ("aggregate.", "configuration"),
    ("keypair.", "configuration"), ("flavor.", "configuration"), ("server_group.", "configuration"),
    ("compute.instance.exists", "other"), ("instance.exists", "other"), ("service.", "other"),
    ("volume.create", "creation"), ("volume.delete", "deletion"), ("volume.exists", "other"), ("volume.", "storage"),
    ("snapshot.exists", "other"), ("snapshot.", "storage"),
    ("image.upload", "creation"), ("image.delete", "deletion"), ("image.update", "configuration"),
    ("image.send", "other"),
    ("network.exists", "other"), ("router.exists", "other"), ("floatingip.exists", "other"),
    ("network.", "network"), ("subnet.", "network"), ("port.", "network"), ("floatingip.", "network"),
    ("firewall", "network"), ("vpnservice", "network"), ("ipsec", "network"), ("ikepolicy", "network"),
    ("pool.", "network"), ("vip.", "network"), ("member.", "network"), ("health_monitor", "network"),
    ("orchestration.stack.create", "creation"), ("orchestration.stack.delete", "deletion"),
    ("orchestration.", "configuration"),
    ("identity.", "identity"),
    ("scheduler.run_instance", "creation"),
]


def expected_group(event_type: str) -> str:
    for prefix, group in EXPECTED_GROUP_PREFIXES:
        if event_type.startswith(prefix):
            return group
    return "other"


def inner(doc: dict) -> dict:
    return json.loads(doc["oslo.message"]) if "oslo.message" in doc else doc


def versioned_data(payload: dict) -> dict:
    return payload.get("nova_object.data", {}) if isinstance(payload, dict) else {}


def expected_refs(body: dict) -> dict[str, str]:
    """The refs a sample's payload carries, read with plain dict access (not through the routing table)."""
    et, p = body["event_type"], body.get("payload") or {}
    data = versioned_data(p)
    out: dict[str, str] = {}
    if data and et.startswith("instance."):
        out["vm_ref"] = data["uuid"]
        if data.get("host"):
            out["host_ref"] = data["host"]
        if data.get("image_uuid"):
            out["image_ref"] = data["image_uuid"]
    elif data and "instance_uuid" in data:
        out["vm_ref"] = data["instance_uuid"]
    elif et.startswith("compute.instance.") or et.startswith("scheduler."):
        out["vm_ref"] = p["instance_id"]
        if p.get("host"):
            out["host_ref"] = p["host"]
    elif et.startswith("port."):
        port = p.get("port") or p["ports"][0]
        out["port_ref"] = port["id"]
        out["network_ref"] = port["network_id"]
    elif et.startswith("network.") and ("network" in p or "networks" in p):
        out["network_ref"] = (p.get("network") or p["networks"][0])["id"]
    elif et.startswith("subnet."):
        subnet = p.get("subnet") or p["subnets"][0]
        out["subnet_ref"] = subnet["id"]
        out["network_ref"] = subnet["network_id"]
    elif et.startswith("router."):
        out["router_ref"] = p["router"]["id"]
    elif et.startswith("floatingip."):
        fip = p.get("floatingip")
        out["floating_ip_ref"] = fip["id"] if isinstance(fip, dict) and "id" in fip else p["id"]
    elif et.startswith("volume."):
        out["volume_ref"] = p["volume_id"]
    elif et.startswith("snapshot."):
        out["snapshot_ref"] = p["snapshot_id"]
        out["volume_ref"] = p["volume_id"]
    elif et.startswith("image.") and et != "image.send":
        out["image_ref"] = p["id"]
    elif et == "image.send":
        out["image_ref"] = p["image_id"]
    elif et.startswith("orchestration.stack."):
        out["stack_ref"] = p["stack_identity"].rsplit("/", 1)[-1]
    return out


def expected_project(body: dict) -> str | None:
    p = body.get("payload") or {}
    data = versioned_data(p)
    for key in ("tenant_id", "project_id"):
        if data.get(key):
            return data[key]
    spec = versioned_data(data.get("request_spec") or {})
    if spec.get("project_id"):
        return spec["project_id"]
    if body["event_type"].startswith("identity.") and isinstance(p.get("project"), str):
        return p["project"]
    for obj in ("port", "network", "subnet", "router", "floatingip"):
        if isinstance(p.get(obj), dict) and p[obj].get("tenant_id"):
            return p[obj]["tenant_id"]
    for obj in ("ports", "networks", "subnets"):
        if isinstance(p.get(obj), list) and p[obj]:
            return p[obj][0]["tenant_id"]
    for key in ("tenant_id", "project_id", "owner", "owner_id"):
        if isinstance(p, dict) and isinstance(p.get(key), str) and p.get(key):
            return p[key]
    for key in ("_context_project_id", "_context_tenant_id", "_context_tenant"):
        if body.get(key):
            return body[key]
    return None


def expected_timestamp(value: str) -> datetime:
    """Normalise the forms found in the samples with plain string surgery, then datetime.fromisoformat."""
    text = value.replace(": ", ":")
    if len(text) > 10 and text[10] not in " T":  # '2014-05-1510:24:56' (a real capture, mangled upstream)
        text = text[:10] + " " + text[10:]
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_converts(path):
    raw = path.read_bytes()
    doc = orjson.loads(raw)
    body = inner(doc)
    event = CONVERTER.convert(raw, "lab", "ingest")

    assert event.event_type == body["event_type"]
    assert event.provider == "lab"
    assert event.group == expected_group(event.event_type), event.event_type
    assert event.group in GROUPS and event.level in LEVELS
    if body.get("timestamp"):
        assert event.timestamp == expected_timestamp(body["timestamp"])
    else:
        assert event.timestamp is None
    if body.get("message_id"):
        assert event.message_id == body["message_id"]
    else:
        assert event.message_id.startswith("sha256-")
    if body.get("publisher_id"):
        assert event.publisher_id == body["publisher_id"]
    assert event.project_id == expected_project(body)
    refs = event.refs()
    for name, value in expected_refs(body).items():
        assert refs.get(name) == value, f"{name} of {event.event_type}"
    # the payload is kept whole (versioned payloads keep nova_object.*)
    assert event.payload == body.get("payload")


def test_versioned_payload_keeps_nova_object_wrapper():
    raw = (SAMPLES / "nova_versioned" / "instance-power_on-end.json").read_bytes()
    event = CONVERTER.convert(raw, "lab", "ingest")
    assert event.payload["nova_object.name"] == "InstanceActionPayload"
    assert event.vm_ref == event.payload["nova_object.data"]["uuid"]
    assert event.group == "power" and event.level == "critical"
    assert ROUTES.route(event.event_type).policy == "vm_start"


def test_listener_view_uses_ctxt_and_metadata():
    for entry in json.loads((SAMPLES / "oslo_wire" / "listener_view.json").read_text()):
        event = CONVERTER.convert(orjson.dumps(entry), "lab", "amqp")
        assert event.message_id == entry["metadata"]["message_id"]
        assert event.timestamp == expected_timestamp(entry["metadata"]["timestamp"])
        assert event.project_id == entry["ctxt"]["project_id"]
        assert event.request_id == entry["ctxt"]["request_id"]
        assert event.priority == entry["method"].upper()
        assert event.vm_ref == entry["payload"]["instance_id"]


def test_raw_amqp_capture_bodies_convert():
    for entry in json.loads((SAMPLES / "oslo_wire" / "raw_capture.json").read_text()):
        event = CONVERTER.convert(orjson.dumps(entry), "lab", "amqp")
        body = inner(json.loads(entry["body"]))
        assert event.message_id == body["message_id"]
        assert event.event_type == body["event_type"]


@pytest.mark.parametrize("name", ["ceilometer-api-ref-events-list-response.json"])
def test_panko_events(name):
    for entry in json.loads((SAMPLES / "panko_api" / name).read_text()):
        event = CONVERTER.convert(orjson.dumps(entry), "lab", "panko")
        assert event.message_id == entry["message_id"]
        assert event.event_type == entry["event_type"]
        assert event.timestamp == expected_timestamp(entry["generated"])
        assert event.payload["traits"] == entry["traits"]


def test_panko_traits_give_refs():
    entry = json.loads((SAMPLES / "panko_api" / "ceilometer-api-ref-event-show-response.json").read_text())
    entry = {**entry, "event_type": "compute.instance.power_on.end",
             "traits": entry["traits"] + [{"name": "instance_id", "type": "string", "value": "vm-1"},
                                          {"name": "tenant_id", "type": "string", "value": "proj-9"}]}
    event = CONVERTER.convert(orjson.dumps(entry), "lab", "panko")
    assert event.vm_ref == "vm-1" and event.project_id == "proj-9" and event.group == "power"


def test_message_id_is_stable_for_bodies_without_one():
    raw = (SAMPLES / "nova_versioned" / "instance-create-end.json").read_bytes()
    a = CONVERTER.convert(raw, "lab", "ingest")
    b = CONVERTER.convert(orjson.dumps(orjson.loads(raw)), "lab", "ingest")  # re-serialised, keys reordered
    other = CONVERTER.convert((SAMPLES / "nova_versioned" / "instance-create-start.json").read_bytes(), "lab", "x")
    assert a.message_id == b.message_id
    assert a.message_id != other.message_id


def test_cadf_identity_event():
    raw = (SAMPLES / "legacy" / "keystone" / "ceilometer-identity-test_notifications-cadf_project_created.json")
    event = CONVERTER.convert(raw.read_bytes(), "lab", "ingest")
    assert event.group == "identity"
    assert event.user_id == "user_id"  # CADF initiator.id of that sample
    targets = ROUTES.route(event.event_type).target_paths
    assert "project" in targets
