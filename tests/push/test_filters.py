"""Scope and filter: what a subscription receives. The randomized test tries many subscriptions, filters and
projects over events of several projects (and of none) and counts cross-project selections: there must be 0,
and every in-scope event a filter names must be selected."""

from __future__ import annotations

import random

import pytest

from stackwatch.events.model import GROUPS, Event
from stackwatch.push.filters import EventFilter, FilterError, Scope, selects

TYPES = ["compute.instance.create.end", "compute.instance.power_on.end", "instance.power_off.end",
         "compute.instance.delete.start", "volume.attach.end", "identity.authenticate", "compute.metrics.update"]


def _event(i: int, project: str | None, event_type: str, vm: str | None = None, group: str = "other") -> Event:
    return Event(message_id=f"m{i}", provider="lab", source="test", event_type=event_type, timestamp=None,
                 project_id=project, vm_ref=vm, group=group)


def test_glob_star_matches_dots():
    flt = EventFilter.build(["compute.instance.*"])
    assert flt.matches(_event(1, "a", "compute.instance.power_on.end"))
    assert not flt.matches(_event(2, "a", "instance.power_on.end"))
    assert EventFilter.build(["*.end"]).matches(_event(3, "a", "compute.instance.create.end"))


def test_refs_groups_and_errors():
    flt = EventFilter.build(["*"], ["power"], {"vm": "v1"})
    assert flt.refs == (("vm_ref", "v1"),)
    assert flt.matches(_event(1, "a", "x", vm="v1", group="power"))
    assert not flt.matches(_event(2, "a", "x", vm="v2", group="power"))
    assert not flt.matches(_event(3, "a", "x", vm="v1", group="creation"))
    with pytest.raises(FilterError, match="groups"):
        EventFilter.build(["*"], ["nope"])
    with pytest.raises(FilterError, match="refs"):
        EventFilter.build(["*"], None, {"flavour": "x"})
    with pytest.raises(FilterError):
        Scope("a", all_projects=True)
    with pytest.raises(FilterError):
        Scope()


def test_no_project_events_only_reach_all_projects():
    ev = _event(1, None, "compute.metrics.update")
    assert not selects(Scope("a"), EventFilter.build(), ev)
    assert selects(Scope(all_projects=True), EventFilter.build(), ev)


def test_filter_round_trips_through_json():
    flt = EventFilter.build(["a.*", "b"], ["power"], {"host": "h1"})
    assert EventFilter.from_json(flt.to_json()) == flt


@pytest.mark.parametrize("seed", range(5))
def test_randomized_zero_cross_project(seed):
    rng = random.Random(seed)
    projects = [f"p{i}" for i in range(6)]
    vms = [f"vm{i}" for i in range(8)]
    events = [_event(i, rng.choice(projects + [None]), rng.choice(TYPES), rng.choice(vms + [None]),
                     rng.choice(GROUPS)) for i in range(800)]
    crossed = selected = 0
    for _ in range(200):
        project = rng.choice(projects)
        globs = rng.sample(["*", "compute.*", "*.end", "instance.*", "volume.*", "compute.instance.*"],
                           rng.randint(1, 3))
        refs = {"vm": rng.choice(vms)} if rng.random() < 0.3 else {}
        groups = rng.sample(GROUPS, rng.randint(1, 3)) if rng.random() < 0.3 else []
        flt = EventFilter.build(globs, groups, refs)
        scope = Scope(project)
        for ev in events:
            hit = selects(scope, flt, ev)
            selected += hit
            crossed += hit and ev.project_id != project
            if ev.project_id == project and flt.matches(ev):
                assert hit
    assert crossed == 0
    assert selected > 0
