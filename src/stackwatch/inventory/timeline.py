"""A VM's timeline joins the event stream and the inventory: ask by name or uuid, see events and changes.

Events carry uuids; operators know names. The inventory resolves one to the other, and its change log
(created / fields changed / deleted) is shown beside the events that caused it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from stackwatch.inventory.kinds import kind_named
from stackwatch.inventory.query import Projects, changes, find


class AmbiguousReference(ValueError):
    """A name matches several servers; the message lists their uuids."""


def resolve_vm(engine: Engine, ref: str, provider: str | None = None, projects: Projects = None) -> str:
    """The uuid of the server whose uuid or name is `ref` (deleted ones count too); `ref` itself if unknown.

    `projects` limits the servers a name may resolve to (a scoped caller's)."""
    found = find(engine, ref, kind_named("vm"), projects)
    matches = [doc for doc in found if provider is None or doc["provider"] == provider]
    uids = sorted({doc["id"] for doc in matches if doc.get("id")})
    if ref in uids or not uids:
        return ref
    if len(uids) > 1:
        raise AmbiguousReference(f"{ref!r} names {len(uids)} servers: {', '.join(uids)} (give the uuid)")
    return uids[0]


def vm_changes(
    engine: Engine, uuid: str, provider: str | None = None, projects: Projects = None
) -> list[dict[str, Any]]:
    return changes(engine, uuid, provider, projects)
