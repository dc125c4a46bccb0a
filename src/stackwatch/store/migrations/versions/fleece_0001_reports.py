"""Fleece reports (own branch "fleece", so the fleece part never edits the event store's revisions).

Revision ID: fleece_0001
"""

import sqlalchemy as sa
from alembic import op

from stackwatch.store.models import BigId, JSONDocument, UTCDateTime

revision = "fleece_0001"
down_revision = "0001_events"
branch_labels = ("fleece",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fleece_reports",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(64)),
        sa.Column("target", sa.String(2048), nullable=False),
        sa.Column("image_id", sa.String(255)),
        sa.Column("vm_id", sa.String(255)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("report", JSONDocument, nullable=False),
        sa.Column("image_size", sa.BigInteger()),
        sa.Column("bytes_read", sa.BigInteger()),
        sa.Column("requests", sa.Integer()),
        sa.Column("seconds", sa.Float()),
    )
    op.create_index("ix_fleece_reports_image", "fleece_reports", ["image_id", "created_at"])
    op.create_index("ix_fleece_reports_vm", "fleece_reports", ["vm_id", "created_at"])
    op.create_index("ix_fleece_reports_created", "fleece_reports", ["created_at"])


def downgrade() -> None:
    op.drop_table("fleece_reports")
