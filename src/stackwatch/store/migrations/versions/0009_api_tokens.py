"""Local API tokens: only a SHA-256 of each token is kept, with its role, project and lifetime.

Revision ID: 0009_api_tokens
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_api_tokens"
down_revision = "0008_subscriptions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("project_id", sa.String(255)),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_index("uq_api_tokens_hash", "api_tokens", ["token_hash"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_api_tokens_hash", table_name="api_tokens")
    op.drop_table("api_tokens")
