"""Every refresh rule of the routing table, on the real samples: the targets an event yields."""

from __future__ import annotations

import json

import orjson
import pytest

from stackwatch.events.convert import Converter
from stackwatch.switchboard.routes import KIND_TO_COLUMN, RoutingTable
from stackwatch.switchboard.targets import Target, targets_for
from tests.conftest import SAMPLES, sample_files

ROUTES = RoutingTable.load()
CONVERTER = Converter(ROUTES)


def convert(path):
    return CONVERTER.convert(path.read_bytes(), "lab", "ingest")


def body_of(path) -> dict:
    doc = orjson.loads(path.read_bytes())
    return orjson.loads(doc["oslo.message"]) if "oslo.message" in doc else doc


def test_each_refresh_kind_appears_on_some_real_sample():
    """Every kind the table can ask for on the samples' types is produced with a real id by some sample."""
    seen: dict[str, set] = {}
    for path in sample_files():
        for t in targets_for(convert(path), ROUTES):
            seen.setdefault(t.kind, set()).add(t.id)
    for kind in ("vm", "host", "image", "volume", "snapshot", "network", "subnet", "port",
                 "stack", "project", "aggregate", "keypair", "flavor", "server_group"):
        assert kind in seen and any(seen[kind]), f"no sample yields a {kind} target with an id"


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_targets_match_the_payload(path):
    event = convert(path)
    body = body_of(path)
    payload = body.get("payload") or {}
    data = payload.get("nova_object.data", {}) if isinstance(payload, dict) else {}
    targets = targets_for(event, ROUTES)
    kinds = {t.kind: t.id for t in targets}
    et = event.event_type
    route = ROUTES.route(et)
    assert {t.kind for t in targets} <= set(route.refresh)
    for kind in route.refresh:  # a kind is left out only when the event does not carry its id
        column = KIND_TO_COLUMN.get(kind)
        assert (kind in kinds) == (column is None or getattr(event, column) is not None), kind
    if et.endswith(".start") or et.endswith(".exists"):
        assert targets == []
    if "vm" in kinds:
        expected = data.get("uuid") or data.get("instance_uuid") or payload.get("instance_id")
        assert kinds["vm"] == expected
    if "port" in kinds and et.startswith("port."):
        port = payload.get("port") or payload["ports"][0]
        assert kinds["port"] == port["id"]
    if "volume" in kinds and et.startswith(("volume.", "snapshot.")):
        assert kinds["volume"] == payload["volume_id"]
    if "aggregate" in kinds:
        assert kinds["aggregate"] == data["uuid"]
    if "keypair" in kinds:
        assert kinds["keypair"] == data["name"]
    if "flavor" in kinds:
        assert kinds["flavor"] == data["flavorid"]
    if "server_group" in kinds:
        assert kinds["server_group"] == data["uuid"]
    if "image" in kinds and et.startswith("image."):
        assert kinds["image"] == payload["id"]
    if "project" in kinds and et.startswith("identity.project."):
        assert kinds["project"] == payload["resource_info"]
    assert all(t.provider == "lab" for t in targets)


def test_power_on_refreshes_only_the_vm():
    event = convert(SAMPLES / "nova_versioned" / "instance-power_on-end.json")
    assert targets_for(event, ROUTES) == [Target("lab", "vm", "178b0921-8f85-4257-88b6-2e743b5a975c")]


def test_snapshot_end_refreshes_vm_and_image():
    event = convert(SAMPLES / "nova_versioned" / "instance-snapshot-end.json")
    kinds = {t.kind for t in targets_for(event, ROUTES)}
    assert kinds == {"vm", "image"}


def test_panko_event_targets_from_traits():
    entry = json.loads((SAMPLES / "panko_api" / "ceilometer-api-ref-event-show-response.json").read_text())
    entry = {**entry, "event_type": "compute.instance.delete.end",
             "traits": [{"name": "instance_id", "type": "string", "value": "vm-7"}]}
    event = CONVERTER.convert(orjson.dumps(entry), "lab", "panko")
    assert targets_for(event, ROUTES) == [Target("lab", "vm", "vm-7")]
