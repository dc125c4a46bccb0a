"""The routing table: it covers ManageIQ's OpenStack types and nova's versioned ones, and rejects bad rules."""

from __future__ import annotations

import json

import pytest

from stackwatch.events.model import GROUPS, LEVELS
from stackwatch.switchboard.routes import (
    EXTRA_KINDS,
    KIND_TO_COLUMN,
    RoutingError,
    RoutingTable,
    resolve_path,
)
from tests.conftest import DATA, SAMPLES

ROUTES = RoutingTable.load()
MIQ_TYPES = [t for t in (DATA / "manageiq_event_types.txt").read_text().split() if t]
VERSIONED_TYPES = sorted({json.loads(p.read_text())["event_type"] for p in (SAMPLES / "nova_versioned").glob("*.json")})


@pytest.mark.parametrize("event_type", MIQ_TYPES + VERSIONED_TYPES)
def test_every_known_type_is_routed(event_type):
    route = ROUTES.route(event_type)
    assert ROUTES.is_routed(event_type), f"{event_type} falls through to the catch-all"
    assert route.group in GROUPS and route.level in LEVELS
    for kind in route.refresh:
        assert kind.removeprefix("all:") in KIND_TO_COLUMN or kind.removeprefix("all:") in EXTRA_KINDS


def test_unknown_type_falls_to_other_detail():
    route = ROUTES.route("acme.widget.frobnicated")
    assert (route.group, route.level, route.policy, route.refresh) == ("other", "detail", None, ())
    assert not ROUTES.is_routed("acme.widget.frobnicated")


@pytest.mark.parametrize(
    ("event_type", "policy"),
    [
        ("compute.instance.power_on.end", "vm_start"), ("instance.power_on.end", "vm_start"),
        ("compute.instance.power_off.end", "vm_poweroff"), ("instance.power_off.end", "vm_poweroff"),
        ("compute.instance.delete.end", "vm_destroy"), ("instance.delete.end", "vm_destroy"),
        ("compute.instance.create.end", "vm_create"), ("instance.create.end", "vm_create"),
        ("compute.instance.snapshot.start", "vm_snapshot"), ("instance.snapshot.end", "vm_snapshot_complete"),
        ("compute.instance.power_on.start", None), ("instance.update", None),
    ],
)
def test_policy_events(event_type, policy):
    assert ROUTES.route(event_type).policy == policy


def test_legacy_and_versioned_twins_agree():
    """The same action published both ways lands in the same group, level and policy."""
    pairs = [(f"compute.instance.{a}.end", f"instance.{a}.end")
             for a in ("create", "delete", "power_on", "power_off", "reboot", "pause", "unpause", "suspend",
                       "resume", "shutdown", "snapshot", "shelve", "unshelve", "rebuild")]
    for legacy, versioned in pairs:
        a, b = ROUTES.route(legacy), ROUTES.route(versioned)
        assert (a.group, a.level, a.policy, a.refresh) == (b.group, b.level, b.policy, b.refresh), legacy


def test_start_events_are_detail_and_do_not_refresh():
    for event_type in ("compute.instance.power_on.start", "instance.create.start", "volume.create.start"):
        route = ROUTES.route(event_type)
        assert route.level == "detail" and route.refresh == ()


def test_operator_override_wins(tmp_path):
    override = tmp_path / "routes.yaml"
    override.write_text(
        "events:\n  - match: compute.instance.power_on.end\n    group: configuration\n    policy: my_start\n"
        "refs:\n  - match: compute.instance.*\n    vm_ref: [my_uuid]\n"
    )
    table = RoutingTable.load(override)
    route = table.route("compute.instance.power_on.end")
    assert route.group == "configuration" and route.policy == "my_start"
    assert route.level == "critical"  # fields the override does not set still come from the shipped table
    assert route.ref_paths["vm_ref"][0] == "my_uuid"
    assert "instance_id" in route.ref_paths["vm_ref"]  # shipped paths stay as fallbacks


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("events:\n  - match: x.*\n    group: bogus\n", "events[0].group"),
        ("events:\n  - match: x.*\n    colour: red\n", "events[0].colour"),
        ("events:\n  - group: power\n", "events[0].match"),
        ("events:\n  - match: x\n    refresh: [spaceship]\n", "events[0].refresh"),
        ("refs:\n  - match: x\n    vm_reff: [a]\n", "refs[0].vm_reff"),
        ("rules: []\n", "unknown section"),
        ("events: [\n", "not valid YAML"),
    ],
)
def test_bad_override_names_the_key(tmp_path, text, message):
    override = tmp_path / "bad.yaml"
    override.write_text(text)
    with pytest.raises(RoutingError, match=message.replace("[", r"\[").replace("]", r"\]")):
        RoutingTable.load(override)


def test_resolve_path_steps_through_nova_objects_and_lists():
    doc = {"nova_object.data": {"flavor": {"nova_object.data": {"flavorid": "m1"}}, "ports": [{"id": "p1"}]},
           "arn": "arn:openstack:heat::t:stacks/name/uuid-1"}
    assert resolve_path(doc, "flavor.flavorid") == "m1"
    assert resolve_path(doc, "ports.0.id") == "p1"
    assert resolve_path(doc, "ports.5.id") is None
    assert resolve_path(doc, "arn|basename") == "uuid-1"
    assert resolve_path(doc, "missing.deeper") is None
