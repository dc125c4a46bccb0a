"""Switchboard handlers: refresh targets are coalesced per provider and batch, policy events are raised."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stackwatch.events.convert import Converter
from stackwatch.switchboard.policy import PolicyHandler
from stackwatch.switchboard.refresh import RefreshHandler
from stackwatch.switchboard.routes import RoutingTable
from stackwatch.switchboard.targets import Target
from tests.conftest import SAMPLES

ROUTES = RoutingTable.load()
CONVERTER = Converter(ROUTES)
VM = "178b0921-8f85-4257-88b6-2e743b5a975c"


def sample(name: str, provider: str = "lab"):
    return CONVERTER.convert((SAMPLES / "nova_versioned" / name).read_bytes(), provider, "ingest")


class Recorder:
    def __init__(self, fail: int = 0) -> None:
        self.calls: list[tuple[str, frozenset[Target], bool]] = []
        self.fail = fail

    def __call__(self, provider, targets, full) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("compute API unreachable")
        self.calls.append((provider, targets, full))


def test_a_batch_is_one_targeted_refresh():
    recorder = Recorder()
    events = [sample(n) for n in ("instance-power_off-end.json", "instance-power_on-end.json",
                                  "instance-reboot-end.json", "instance-snapshot-end.json")] * 10
    RefreshHandler(ROUTES, recorder).handle(events)
    assert len(recorder.calls) == 1
    provider, targets, full = recorder.calls[0]
    assert provider == "lab" and not full
    snapshot = next(e.payload["nova_object.data"]["snapshot_image_id"] for e in events
                    if e.event_type == "instance.snapshot.end")
    assert targets == {Target("lab", "vm", VM), Target("lab", "image", snapshot)}


def test_providers_are_refreshed_separately_and_start_events_not_at_all():
    recorder = Recorder()
    RefreshHandler(ROUTES, recorder).handle(
        [sample("instance-power_on-start.json", "a"), sample("instance-power_on-end.json", "b")]
    )
    assert [(p, set(t)) for p, t, _f in recorder.calls] == [("b", {Target("b", "vm", VM)})]


def test_many_targets_become_a_full_refresh():
    recorder = Recorder()
    base = sample("instance-power_on-end.json")
    RefreshHandler(ROUTES, recorder, full_threshold=3).handle([replace(base, vm_ref=f"vm-{i}") for i in range(5)])
    assert len(recorder.calls) == 1 and recorder.calls[0][2] is True


def test_a_failed_refresh_raises_so_the_batch_is_kept():
    recorder = Recorder(fail=1)
    handler = RefreshHandler(ROUTES, recorder)
    with pytest.raises(ConnectionError):
        handler.handle([sample("instance-power_on-end.json")])
    handler.handle([sample("instance-power_on-end.json")])
    assert [(p, set(t)) for p, t, _f in recorder.calls] == [("lab", {Target("lab", "vm", VM)})]


def test_policy_events_are_raised_from_the_routing_table():
    policies = []
    PolicyHandler(ROUTES, [lambda p: policies.append((p.name, p.event.vm_ref))]).handle(
        [sample("instance-power_on-end.json"), sample("instance-delete-end.json"), sample("instance-update.json")]
    )
    assert policies == [("vm_start", VM), ("vm_destroy", VM)]
