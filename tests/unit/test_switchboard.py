"""Switchboard: handlers run in order, failures are contained, refresh targets are coalesced per provider."""

from __future__ import annotations

import threading
import time

from stackwatch.events.convert import Converter
from stackwatch.switchboard.dispatch import Switchboard
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
    def __init__(self) -> None:
        self.calls: list[tuple[str, frozenset[Target], bool]] = []
        self.done = threading.Event()

    def __call__(self, provider, targets, full) -> None:
        self.calls.append((provider, targets, full))
        self.done.set()


def test_burst_is_coalesced_into_one_targeted_refresh():
    recorder = Recorder()
    handler = RefreshHandler(ROUTES, recorder, window=0.3)
    events = [sample(n) for n in ("instance-power_off-end.json", "instance-power_on-end.json",
                                  "instance-reboot-end.json", "instance-snapshot-end.json")] * 10
    handler.handle(events[:20])
    handler.handle(events[20:])
    assert recorder.done.wait(5)
    time.sleep(0.4)
    handler.close()
    assert len(recorder.calls) == 1
    provider, targets, full = recorder.calls[0]
    assert provider == "lab" and not full
    assert targets == {Target("lab", "vm", VM), Target("lab", "image", targets_image(events))}


def targets_image(events):
    return next(e.payload["nova_object.data"]["snapshot_image_id"] for e in events
                if e.event_type == "instance.snapshot.end")


def test_providers_are_refreshed_separately_and_start_events_not_at_all():
    recorder = Recorder()
    handler = RefreshHandler(ROUTES, recorder, window=0.05)
    handler.handle([sample("instance-power_on-start.json", "a"), sample("instance-power_on-end.json", "b")])
    assert recorder.done.wait(5)
    handler.close()
    assert [(p, set(t)) for p, t, _f in recorder.calls] == [("b", {Target("b", "vm", VM)})]


def test_many_targets_become_a_full_refresh():
    recorder = Recorder()
    handler = RefreshHandler(ROUTES, recorder, window=10, full_threshold=3)
    base = sample("instance-power_on-end.json")
    from dataclasses import replace

    handler.handle([replace(base, vm_ref=f"vm-{i}") for i in range(5)])
    handler.flush()
    handler.close()
    assert len(recorder.calls) == 1 and recorder.calls[0][2] is True


def test_switchboard_runs_handlers_in_order_and_contains_failures():
    seen: list[str] = []

    class Boom:
        name = "boom"

        def handle(self, events):
            raise RuntimeError("handler bug")

    policies = []
    policy = PolicyHandler(ROUTES, [lambda p: policies.append((p.name, p.event.vm_ref))])

    class After:
        name = "after"

        def handle(self, events):
            seen.extend(e.event_type for e in events)

    board = Switchboard([Boom(), policy, After()]).start()
    board.submit([sample("instance-power_on-end.json"), sample("instance-delete-end.json"),
                  sample("instance-update.json")])
    board.join()
    board.stop()
    assert board.failures == 1 and board.handled == 3
    assert seen == ["instance.power_on.end", "instance.delete.end", "instance.update"]
    assert policies == [("vm_start", VM), ("vm_destroy", VM)]
