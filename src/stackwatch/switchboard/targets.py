"""Refresh targets of an event, read from the routing table: which inventory objects to re-read.

A target is (kind, id); id None means "the whole kind" (the table's `all:<kind>`, or a kind whose id the
event does not carry). The inventory's targeted refresh coalesces targets and calls only the APIs they need.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackwatch.events.model import Event
from stackwatch.switchboard.routes import KIND_TO_COLUMN, RoutingTable, first_scalar


@dataclass(frozen=True, slots=True, order=True)
class Target:
    provider: str
    kind: str
    id: str | None


def _payload_view(event: Event) -> object:
    payload = event.payload
    if event.source == "panko" and isinstance(payload, dict) and "traits" in payload:
        traits = payload.get("traits") or []
        return {t.get("name"): t.get("value") for t in traits if isinstance(t, dict)}
    return payload


def targets_for(event: Event, routes: RoutingTable) -> list[Target]:
    route = routes.route(event.event_type)
    out: list[Target] = []
    for kind in route.refresh:
        if kind.startswith("all:"):
            out.append(Target(event.provider, kind[4:], None))
            continue
        paths = route.target_paths.get(kind)
        ref = first_scalar(_payload_view(event), paths) if paths else None
        if kind in KIND_TO_COLUMN:
            ref = ref or getattr(event, KIND_TO_COLUMN[kind])
            if ref:
                out.append(Target(event.provider, kind, ref))
            continue
        if ref is None and kind == "project":
            ref = event.project_id
        # an extra kind without an id (keypairs are listed, not fetched one by one) refreshes the kind
        out.append(Target(event.provider, kind, ref))
    return sorted(set(out))
