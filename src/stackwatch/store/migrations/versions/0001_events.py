"""Event stream: events, quarantine, monitor cursors.

Revision ID: 0001_events
"""

import sqlalchemy as sa
from alembic import op

from stackwatch.store.models import BigId, JSONDocument, UTCDateTime

revision = "0001_events"
down_revision = None
branch_labels = None
depends_on = None

_REF_COLUMNS = (
    "vm_ref", "host_ref", "image_ref", "volume_ref", "snapshot_ref", "network_ref", "subnet_ref", "port_ref",
    "router_ref", "floating_ip_ref", "security_group_ref", "stack_ref", "availability_zone",
)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("event_type", sa.String(255), nullable=False),
        sa.Column("timestamp", UTCDateTime()),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("sort_time", UTCDateTime(), nullable=False),
        sa.Column("publisher_id", sa.String(255)),
        sa.Column("priority", sa.String(16)),
        sa.Column("project_id", sa.String(255)),
        sa.Column("user_id", sa.String(255)),
        sa.Column("request_id", sa.String(255)),
        *[sa.Column(name, sa.String(255)) for name in _REF_COLUMNS],
        sa.Column("event_group", sa.String(32), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("collapsed_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("payload", JSONDocument),
    )
    op.create_index("uq_events_provider_message", "events", ["provider", "message_id"], unique=True)
    op.create_index("ix_events_provider_time", "events", ["provider", "sort_time"])
    op.create_index("ix_events_vm_time", "events", ["vm_ref", "sort_time"])
    op.create_index("ix_events_host_time", "events", ["host_ref", "sort_time"])
    op.create_index("ix_events_project_time", "events", ["project_id", "sort_time"])
    op.create_index("ix_events_type_time", "events", ["event_type", "sort_time"])
    op.create_index("ix_events_group_time", "events", ["event_group", "sort_time"])
    op.create_index("ix_events_time", "events", ["sort_time"])

    op.create_table(
        "quarantine",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_quarantine_provider_time", "quarantine", ["provider", "received_at"])
    op.create_index("uq_quarantine_provider_digest", "quarantine", ["provider", "digest"], unique=True)

    op.create_table(
        "monitor_cursors",
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("monitor", sa.String(32), primary_key=True),
        sa.Column("position", JSONDocument),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("monitor_cursors")
    op.drop_table("quarantine")
    op.drop_table("events")
