"""Project scoping: a viewer of one project sees exactly the admin's rows of that project, through every route
and parameter (filters, ids, names, limits), and nothing of other projects or of no project.

The oracle is the admin's answer to the same question without a limit, filtered to the viewer's project and
cut to the limit the viewer asked: equal answers mean no row leaks and no other project's row takes a place
in a limited page (counts and paging cannot be probed either).
"""

from __future__ import annotations

import random

import pytest

from tests.api.conftest import PROJECTS, Secured

ALL = 10_000


def _pick(rng: random.Random, values: dict[str, list], *names: str) -> dict:
    return {n: rng.choice(values[n]) if rng.random() < 0.5 or n == "limit" else None for n in names}


def _tail(rows: list, limit: int) -> list:
    return rows[-limit:] if limit else rows


def check_events(s: Secured, rng: random.Random, viewer: str) -> None:
    params = _pick(rng, s.world.values(), "provider", "vm", "host", "project", "type", "group", "since", "until",
                   "limit")
    got = s.get(viewer, "/api/v1/events", **params)
    full = s.get("admin", "/api/v1/events", **{**params, "limit": ALL})
    assert got.status_code == full.status_code == 200, (params, got.text, full.text)
    expected = _tail([e for e in full.json() if e["project_id"] == viewer], params["limit"])
    assert got.json() == expected, params


def check_event_by_id(s: Secured, rng: random.Random, viewer: str) -> None:
    event = rng.choice(s.world.events)
    provider = rng.choice([None, event.provider, "west" if event.provider == "east" else "east"])
    got = s.get(viewer, f"/api/v1/events/{event.message_id}", provider=provider)
    visible = event.project_id == viewer and provider in (None, event.provider)
    assert got.status_code == (200 if visible else 404), (event, provider, got.text)
    if visible:
        assert got.json()["message_id"] == event.message_id


def check_timeline(s: Secured, rng: random.Random, viewer: str) -> None:
    params = _pick(rng, s.world.values(), "vm", "host", "project", "provider", "since", "until", "limit")
    if not any(params[k] for k in ("vm", "host", "project", "provider")):
        params["vm"] = rng.choice([v for vs in s.world.vms.values() for v in vs])
    got = s.get(viewer, "/api/v1/timeline", **params)
    full = s.get("admin", "/api/v1/timeline", **{**params, "limit": ALL})
    if full.status_code == 409:  # a name several of the admin's servers share; the viewer's may be unique
        assert got.status_code in (200, 409)
        return
    assert got.status_code == 200, (params, got.text)
    body = got.json()
    assert all(e["project_id"] == viewer for e in body["events"]), params
    vm = body["vm"]
    if vm is not None and params["vm"] and params["vm"] != vm:  # a name resolved: to one of the viewer's VMs
        assert vm in s.world.vms[viewer], (params, vm)
    admin_same = s.get("admin", "/api/v1/timeline", **{**params, "vm": vm, "limit": ALL}).json()
    assert body["events"] == _tail([e for e in admin_same["events"] if e["project_id"] == viewer],
                                   params["limit"]), params
    if vm is not None and vm not in s.world.vms[viewer]:
        assert body["changes"] == [], params
    assert sum(body["groups"].values()) == len(body["events"])


def check_inventory(s: Secured, rng: random.Random, viewer: str) -> None:
    kind = rng.choice(["servers", "vm", "images", "hypervisors"])
    deleted = rng.choice([None, "true"])
    provider = rng.choice([None, "east", "west"])
    limit = rng.choice([1, 2, 5, 1000])
    got = s.get(viewer, f"/api/v1/inventory/{kind}", provider=provider, deleted=deleted, limit=limit)
    full = s.get("admin", f"/api/v1/inventory/{kind}", provider=provider, deleted=deleted, limit=ALL)
    assert got.status_code == 200
    assert got.json() == [d for d in full.json() if d.get("project_id") == viewer][:limit]
    ref = rng.choice(s.world.values()["vm"][1:] + ["cirros", "cmp-1", "hv-1"])
    one = s.get(viewer, f"/api/v1/inventory/{kind}/{ref}")
    every = s.get("admin", f"/api/v1/inventory/{kind}/{ref}")
    mine = [d for d in every.json() if d.get("project_id") == viewer] if every.status_code == 200 else []
    if mine:
        assert one.status_code == 200 and one.json() == mine
    else:
        assert one.status_code == 404, (kind, ref, one.text)


def check_fleece(s: Secured, rng: random.Random, viewer: str) -> None:
    ids = list(s.world.reports)
    rid = rng.choice([*ids, 999_999])
    one = s.get(viewer, f"/api/v1/fleece/{rid}")
    assert one.status_code == (200 if s.world.reports.get(rid, "?") == viewer else 404), rid
    values = s.world.values()
    params = {"vm_id": rng.choice([None, *values["vm"][1:]]), "provider": rng.choice([None, "east"]),
              "limit": rng.choice([1, 2, 100])}
    got = s.get(viewer, "/api/v1/fleece", **params)
    full = s.get("admin", "/api/v1/fleece", **{**params, "limit": 1000})
    expected = [r for r in full.json() if s.world.reports[r["id"]] == viewer][: params["limit"]]
    assert got.status_code == 200 and got.json() == expected, params


CHECKS = (check_events, check_event_by_id, check_timeline, check_inventory, check_fleece)


def test_randomized_queries_leak_nothing(secured: Secured) -> None:
    rng = random.Random(1616)
    for _ in range(400):
        viewer = rng.choice(PROJECTS)
        rng.choice(CHECKS)(secured, rng, viewer)


def test_viewer_sees_own_project_and_not_others(secured: Secured) -> None:
    alpha, bravo = PROJECTS
    mine = secured.get(alpha, "/api/v1/events", limit=ALL).json()
    assert mine and {e["project_id"] for e in mine} == {alpha}
    assert secured.get(alpha, "/api/v1/events", project=bravo).json() == []
    everything = secured.get("admin", "/api/v1/events", limit=ALL).json()
    assert {e["project_id"] for e in everything} == {alpha, bravo, None}
    # events of no project (hypervisors, services): admins only
    assert not [e for e in mine if e["project_id"] is None]
    assert secured.get(alpha, "/api/v1/inventory/hypervisors").json() == []
    assert len(secured.get("admin", "/api/v1/inventory/hypervisors").json()) == 1
    # a name both projects use resolves to the caller's own VM
    web_alpha = secured.get(alpha, "/api/v1/timeline", vm="web").json()
    assert web_alpha["vm"] in secured.world.vms[alpha]
    assert secured.get("admin", "/api/v1/timeline", vm="web").status_code == 409


@pytest.mark.parametrize("path", ["/api/v1/quarantine", "/api/v1/handlers"])
def test_admin_only_routes(secured: Secured, path: str) -> None:
    assert secured.get(PROJECTS[0], path).status_code == 403
    assert secured.get("admin", path).status_code == 200
    assert secured.get(None, path).status_code == 401
