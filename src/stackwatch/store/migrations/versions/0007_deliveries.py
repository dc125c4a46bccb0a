"""The delivery outbox (deliveries, delivery_attempts) and automation rules' audit (rule_matches,
rule_throttles); store/deliveries.py describes them.

Revision ID: 0007_deliveries
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from stackwatch.store.models import BigId, JSONDocument, UTCDateTime

revision = "0007_deliveries"
down_revision = "0005_handler_stream"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("provider", sa.String(64)),
        sa.Column("event_id", sa.BigInteger()),
        sa.Column("lane", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("target", sa.Text()),
        sa.Column("spec", JSONDocument, nullable=False),
        sa.Column("body", sa.LargeBinary()),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("last_status", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        sa.Column("lease_owner", sa.String(255)),
        sa.Column("lease_until", UTCDateTime()),
        sa.CheckConstraint("source IN ('rule', 'subscription')", name="ck_deliveries_source"),
        sa.CheckConstraint("state IN ('pending', 'done', 'dead')", name="ck_deliveries_state"),
    )
    op.create_index("uq_deliveries_key", "deliveries", ["source", "owner", "action_index", "message_id"],
                    unique=True)
    op.create_index("ix_deliveries_due", "deliveries", ["state", "next_attempt_at"])
    op.create_index("ix_deliveries_lane", "deliveries", ["source", "owner", "lane", "state", "id"])
    op.create_index("ix_deliveries_message", "deliveries", ["message_id"])
    op.create_table(
        "delivery_attempts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("status", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("worker", sa.String(255)),
    )
    op.create_index("ix_delivery_attempts_delivery", "delivery_attempts", ["delivery_id", "attempt"])
    op.create_table(
        "rule_matches",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("event_id", sa.BigInteger()),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("matched_at", UTCDateTime(), nullable=False),
        sa.Column("throttled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("actions", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("uq_rule_matches_key", "rule_matches", ["rule", "provider", "message_id"], unique=True)
    op.create_index("ix_rule_matches_message", "rule_matches", ["message_id"])
    op.create_index("ix_rule_matches_rule_time", "rule_matches", ["rule", "matched_at"])
    op.create_table(
        "rule_throttles",
        sa.Column("rule", sa.String(128), primary_key=True),
        sa.Column("group_key", sa.String(512), primary_key=True),
        sa.Column("fired_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rule_throttles")
    op.drop_table("rule_matches")
    op.drop_table("delivery_attempts")
    op.drop_table("deliveries")
