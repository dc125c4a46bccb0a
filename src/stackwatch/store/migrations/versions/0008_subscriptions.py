"""Push subscriptions: owner scope, filter, destination (masked; credentials encrypted) and delivery options.

Revision ID: 0008_subscriptions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from stackwatch.store.models import JSONDocument, UTCDateTime

revision = "0008_subscriptions"
down_revision = "0007_deliveries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(255)),
        sa.Column("all_projects", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("filter", JSONDocument, nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("destination_encrypted", sa.Text()),
        sa.Column("secret_env", sa.String(255)),
        sa.Column("secret_encrypted", sa.Text()),
        sa.Column("max_attempts", sa.Integer(), nullable=False, server_default="10"),
        sa.Column("ttl_seconds", sa.Float()),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("admin_created", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("(project_id IS NULL) = all_projects", name="ck_subscriptions_scope"),
    )
    op.create_index("ix_subscriptions_project", "subscriptions", ["project_id"])


def downgrade() -> None:
    op.drop_table("subscriptions")
