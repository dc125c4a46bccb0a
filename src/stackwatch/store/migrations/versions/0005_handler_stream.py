"""Handlers read the stored stream: handler positions (with leases) and, on PostgreSQL, each row's txid.

A reader on PostgreSQL orders by (txid, id) and stops at the oldest running transaction, so rows whose ids
commit out of order are never skipped (store/stream.py says why). Rows stored before this revision get txid
0: they all come before anything stored after it.

Revision ID: 0005_handler_stream
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_handler_stream"
down_revision = "0003_event_write_cost"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handler_positions",
        sa.Column("handler", sa.String(64), primary_key=True),
        sa.Column("partition", sa.String(128), primary_key=True),
        sa.Column("txid", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("event_id", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("handled", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("owner", sa.String(255)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # a constant default first: existing rows take it without a table rewrite
        op.execute("ALTER TABLE events ADD COLUMN txid xid8 NOT NULL DEFAULT '0'")
        op.execute("ALTER TABLE events ALTER COLUMN txid SET DEFAULT pg_current_xact_id()")
        op.execute("CREATE INDEX ix_events_txid ON events (txid, id)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_events_txid")
        op.execute("ALTER TABLE events DROP COLUMN IF EXISTS txid")
    op.drop_table("handler_positions")
