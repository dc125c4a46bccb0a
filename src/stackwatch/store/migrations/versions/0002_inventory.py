"""Inventory: items (one row per cloud object, every kind), changes, refresh runs.

Revision ID: 0002_inventory
"""

import sqlalchemy as sa
from alembic import op

from stackwatch.store.models import BigId, JSONDocument, UTCDateTime

revision = "0002_inventory"
down_revision = "0001_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inventory_items",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("uid", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("status", sa.String(64)),
        sa.Column("project_id", sa.String(255)),
        sa.Column("host", sa.String(255)),
        sa.Column("data", JSONDocument, nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_at", UTCDateTime()),
    )
    op.create_index("uq_inventory_items_provider_kind_uid", "inventory_items", ["provider", "kind", "uid"], unique=True)
    op.create_index("ix_inventory_items_kind_deleted", "inventory_items", ["provider", "kind", "deleted_at"])
    op.create_index("ix_inventory_items_uid", "inventory_items", ["uid"])
    op.create_index("ix_inventory_items_name", "inventory_items", ["name"])
    op.create_table(
        "inventory_changes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("uid", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("changes", JSONDocument),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("refresh_id", BigId),
    )
    op.create_index("ix_inventory_changes_uid_at", "inventory_changes", ["uid", "at"])
    op.create_index("ix_inventory_changes_provider_at", "inventory_changes", ["provider", "at"])
    op.create_table(
        "inventory_refreshes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("api_calls", sa.Integer, nullable=False, server_default="0"),
        sa.Column("counts", JSONDocument),
        sa.Column("notes", JSONDocument),
    )
    op.create_index("ix_inventory_refreshes_provider_started", "inventory_refreshes", ["provider", "started_at"])


def downgrade() -> None:
    op.drop_table("inventory_refreshes")
    op.drop_table("inventory_changes")
    op.drop_table("inventory_items")
