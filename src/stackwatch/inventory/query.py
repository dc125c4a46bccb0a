"""Reading the inventory: rows of one kind as JSON documents, and the change history of one object."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session

from stackwatch.inventory.kinds import Kind
from stackwatch.inventory.models import InventoryChangeRow, InventoryItemRow
from stackwatch.store.scope import restrict

Projects = tuple[str, ...] | None  # the caller's visible projects (store/scope.py); None: every project


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def row_document(row: InventoryItemRow) -> dict[str, Any]:
    """The kept fields, then ``deleted_at`` (ours: when a refresh found it gone) and the provider."""
    doc = dict(row.data)
    doc["deleted_at"] = _iso(row.deleted_at)
    doc["provider"] = row.provider
    return doc


def items(
    engine: Engine, kind: Kind, provider: str | None = None, deleted: bool = False, limit: int | None = None,
    projects: Projects = None,
) -> list[dict[str, Any]]:
    """Live objects of a kind; with ``deleted`` the deleted ones too."""
    q = select(InventoryItemRow).where(InventoryItemRow.kind == kind.name)
    q = restrict(q, InventoryItemRow.project_id, projects)
    if provider:
        q = q.where(InventoryItemRow.provider == provider)
    if not deleted:
        q = q.where(InventoryItemRow.deleted_at.is_(None))
    q = q.order_by(InventoryItemRow.provider, InventoryItemRow.name, InventoryItemRow.uid)
    if limit:
        q = q.limit(limit)
    with Session(engine) as session:
        return [row_document(r) for r in session.scalars(q)]


def find(engine: Engine, ref: str, kind: Kind | None = None, projects: Projects = None) -> list[dict[str, Any]]:
    """Objects whose uid or name is ``ref``."""
    q = select(InventoryItemRow).where(or_(InventoryItemRow.uid == ref, InventoryItemRow.name == ref))
    q = restrict(q, InventoryItemRow.project_id, projects)
    if kind:
        q = q.where(InventoryItemRow.kind == kind.name)
    with Session(engine) as session:
        return [row_document(r) | {"kind": r.kind} for r in session.scalars(q)]


def changes(engine: Engine, uid: str, provider: str | None = None, projects: Projects = None) -> list[dict[str, Any]]:
    """The change history of one object; a scoped caller sees it only for objects of their projects."""
    q = select(InventoryChangeRow).where(InventoryChangeRow.uid == uid)
    if projects is not None:
        visible = restrict(select(InventoryItemRow.uid).where(InventoryItemRow.uid == uid),
                           InventoryItemRow.project_id, projects)
        q = q.where(InventoryChangeRow.uid.in_(visible.scalar_subquery()))
    if provider:
        q = q.where(InventoryChangeRow.provider == provider)
    with Session(engine) as session:
        return [
            {
                "at": _iso(c.at),
                "provider": c.provider,
                "kind": c.kind,
                "uid": c.uid,
                "action": c.action,
                "changes": c.changes,
                "refresh_id": c.refresh_id,
            }
            for c in session.scalars(q.order_by(InventoryChangeRow.at, InventoryChangeRow.id))
        ]
