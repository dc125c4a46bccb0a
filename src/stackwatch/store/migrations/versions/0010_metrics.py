"""Metrics: rollups per instance / host / project at 5 min, 1 h, 1 day; capture cursors; Gnocchi's instances.

Revision ID: 0010_metrics
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from stackwatch.store.models import BigId, UTCDateTime

revision = "0010_metrics"
down_revision = "0009_api_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_rollups",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("granularity", sa.Integer(), nullable=False),
        sa.Column("period_start", UTCDateTime(), nullable=False),
        sa.Column("avg", sa.Double(), nullable=False),
        sa.Column("max", sa.Double(), nullable=False),
        sa.Column("total", sa.Double(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("project_id", sa.String(255)),
    )
    op.create_index("uq_metric_rollups_key", "metric_rollups",
                    ["provider", "scope", "ref", "metric", "granularity", "period_start"], unique=True)
    op.create_index("ix_metric_rollups_period", "metric_rollups", ["provider", "granularity", "period_start"])
    op.create_table(
        "metric_cursors",
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("resource_id", sa.String(64), primary_key=True),
        sa.Column("metric", sa.String(64), primary_key=True),
        sa.Column("instance_id", sa.String(64), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.Column("last_value", sa.Double(), nullable=False),
    )
    op.create_index("ix_metric_cursors_instance", "metric_cursors", ["provider", "instance_id"])
    op.create_table(
        "metric_instances",
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("instance_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255)),
        sa.Column("host", sa.String(255)),
        sa.Column("project_id", sa.String(255)),
        sa.Column("ended_at", UTCDateTime()),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_metric_instances_name", "metric_instances", ["name"])
    op.create_table(
        "metric_rollup_pending",
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("first_period", UTCDateTime(), nullable=False),
        sa.Column("last_period", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("metric_rollup_pending")
    op.drop_table("metric_instances")
    op.drop_table("metric_cursors")
    op.drop_table("metric_rollups")
