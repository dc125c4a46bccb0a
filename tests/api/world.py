"""A store seeded with the rows of several projects (events, inventory, fleece reports) for scoping tests.

Two providers, projects given by the caller plus events that belong to no project (hypervisor / service
events, admins only); names are shared across projects on purpose (a VM named `web` in each), so resolving a
name must stay inside the caller's projects.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from stackwatch.events.model import GROUPS, Event
from stackwatch.fleece.reports import FleeceReports
from stackwatch.inventory.models import InventoryChangeRow, InventoryItemRow

PROVIDERS = ("east", "west")
TYPES = ("compute.instance.create.end", "compute.instance.delete.end", "instance.power_off.end",
         "image.update", "port.create.end", "compute.instance.exists")
T0 = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass
class World:
    projects: tuple[str, ...]
    events: list[Event] = field(default_factory=list)
    vms: dict[str, list[str]] = field(default_factory=dict)  # project (or "") -> vm uuids
    hosts: list[str] = field(default_factory=list)
    reports: dict[int, str | None] = field(default_factory=dict)  # fleece report id -> project

    def values(self) -> dict[str, list]:
        """Every value a parameter could be guessed from, across projects (what a prober would try)."""
        vm_names = ["web", "db", "nope"]
        return {
            "provider": [None, *PROVIDERS, "nope"],
            "vm": [None, *(v for vs in self.vms.values() for v in vs), *vm_names],
            "host": [None, *self.hosts],
            "project": [None, *self.projects, "nope"],
            "type": [None, *TYPES, "compute.*", "*", "%", "_%"],
            "group": [None, *GROUPS[:4]],
            "since": [None, (T0 + timedelta(hours=6)).isoformat()],
            "until": [None, (T0 + timedelta(hours=18)).isoformat()],
            "limit": [1, 3, 7, 50, 10_000],
            "message_id": [e.message_id for e in self.events],
            "report_id": list(self.reports) + [999_999],
        }


def seed(store, projects: tuple[str, ...], per_project: int = 60, seed_value: int = 16) -> World:  # noqa: ANN001
    rng = random.Random(seed_value)
    world = World(projects=projects)
    world.hosts = ["cmp-1", "cmp-2", "cmp-3"]
    now = datetime.now(UTC)
    with Session(store.engine) as session, session.begin():
        for p in (*projects, ""):
            world.vms[p] = []
            for i, name in enumerate(("web", "db")):
                uid = f"{p or 'noproj'}-vm-{i}-{rng.randrange(10**6):06d}"
                world.vms[p].append(uid)
                provider = PROVIDERS[i % 2]
                session.add(InventoryItemRow(
                    provider=provider, kind="servers", uid=uid, name=name, status="ACTIVE",
                    project_id=p or None, host=rng.choice(world.hosts),
                    data={"id": uid, "name": name, "status": "ACTIVE", "project_id": p or None},
                    first_seen=now, last_seen=now, changed_at=now,
                ))
                session.add(InventoryChangeRow(provider=provider, kind="servers", uid=uid, action="created",
                                               changes={"name": name}, at=now))
            img = f"{p or 'noproj'}-img"
            session.add(InventoryItemRow(
                provider="east", kind="images", uid=img, name="cirros", status="active", project_id=p or None,
                data={"id": img, "name": "cirros", "project_id": p or None}, first_seen=now, last_seen=now,
                changed_at=now,
            ))
        session.add(InventoryItemRow(
            provider="east", kind="hypervisors", uid="hv-1", name="cmp-1", status="enabled", project_id=None,
            data={"id": "hv-1", "name": "cmp-1"}, first_seen=now, last_seen=now, changed_at=now,
        ))
    events = []
    for p in (*projects, ""):
        for n in range(per_project):
            vm = rng.choice(world.vms[p]) if rng.random() < 0.8 else None
            events.append(Event(
                message_id=f"{p or 'noproj'}-{n}-{rng.randrange(10**9)}",
                provider=rng.choice(PROVIDERS), source="test", event_type=rng.choice(TYPES),
                timestamp=T0 + timedelta(minutes=rng.randrange(24 * 60)),
                project_id=p or None, vm_ref=vm, host_ref=rng.choice(world.hosts),
                group=rng.choice(GROUPS[:4]), level="summary", payload={"n": n, "project": p},
            ))
    result = store.write_batch(events)
    assert len(result.stored) == len(events)
    world.events = events
    reports = FleeceReports(store.engine)
    for p in (*projects, ""):
        for target in (f"instance:{world.vms[p][0]}", f"glance:{p or 'noproj'}-img"):
            rid = reports.save({"target": target, "os": {"id": "cirros"}, "errors": [], "io": {}}, provider="east")
            world.reports[rid] = p or None
    rid = reports.save({"target": "/srv/images/local.qcow2", "os": {}, "errors": [], "io": {}})
    world.reports[rid] = None
    return world
