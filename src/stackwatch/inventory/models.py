"""Inventory tables on the store's Base: one row per cloud object, one row per change, one per refresh run.

One table for every kind (the kinds table in inventory.kinds says which fields are kept, in ``data``);
name / status / project / host are columns too, for filtering without JSON queries.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stackwatch.store.models import Base, BigId, JSONDocument, UTCDateTime


class InventoryItemRow(Base):
    __tablename__ = "inventory_items"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    uid: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(64))
    project_id: Mapped[str | None] = mapped_column(String(255))
    host: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[dict] = mapped_column(JSONDocument, nullable=False)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("uq_inventory_items_provider_kind_uid", "provider", "kind", "uid", unique=True),
        Index("ix_inventory_items_kind_deleted", "provider", "kind", "deleted_at"),
        Index("ix_inventory_items_uid", "uid"),
        Index("ix_inventory_items_name", "name"),
    )


class InventoryChangeRow(Base):
    """created (data = the kept fields), updated (changes = {field: [old, new]}), deleted, restored."""

    __tablename__ = "inventory_changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    uid: Mapped[str] = mapped_column(String(255), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    changes: Mapped[dict | None] = mapped_column(JSONDocument)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    refresh_id: Mapped[int | None] = mapped_column(BigId)

    __table_args__ = (
        Index("ix_inventory_changes_uid_at", "uid", "at"),
        Index("ix_inventory_changes_provider_at", "provider", "at"),
    )


class InventoryRefreshRow(Base):
    """One refresh run: full or targeted, how long, how many API calls, what it found, kinds skipped."""

    __tablename__ = "inventory_refreshes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64), nullable=False)
    mode: Mapped[str] = mapped_column(String(16), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    api_calls: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    counts: Mapped[dict | None] = mapped_column(JSONDocument)
    notes: Mapped[dict | None] = mapped_column(JSONDocument)

    __table_args__ = (Index("ix_inventory_refreshes_provider_started", "provider", "started_at"),)
