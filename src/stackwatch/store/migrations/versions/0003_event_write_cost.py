"""Cheaper event inserts: partial VM and host indexes, no group index, payload as `json` on PostgreSQL.

Many events carry no VM or host (identity, image, network events), so those two indexes only hold the rows
that have one; `vm_ref = ?` implies NOT NULL, so SQLite and PostgreSQL still use them. A group is filtered
inside a provider's, VM's or host's timeline, which their indexes serve; a group-wide index only slowed
every insert (bench/ingest.py, see bench/RESULTS.md).

On PostgreSQL the payload becomes `json` (kept as sent, validated) instead of `jsonb`: every query reads
columns, none looks inside the payload, and building jsonb was the largest server cost of an insert (COPY of
1,000 events: 42-52 µs per event into jsonb, 28 µs into json). The ALTER rewrites the table once.

Revision ID: 0003_event_write_cost
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_event_write_cost"
down_revision = "0001_events"
branch_labels = None
depends_on = None


def _partial(column: str) -> dict[str, object]:
    where = sa.text(f"{column} IS NOT NULL")
    return {"sqlite_where": where, "postgresql_where": where}


def upgrade() -> None:
    op.drop_index("ix_events_group_time", table_name="events")
    for name, column in (("ix_events_vm_time", "vm_ref"), ("ix_events_host_time", "host_ref")):
        op.drop_index(name, table_name="events")
        op.create_index(name, "events", [column, "sort_time"], **_partial(column))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE events ALTER COLUMN payload TYPE json USING payload::json")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE events ALTER COLUMN payload TYPE jsonb USING payload::jsonb")
    for name, column in (("ix_events_vm_time", "vm_ref"), ("ix_events_host_time", "host_ref")):
        op.drop_index(name, table_name="events")
        op.create_index(name, "events", [column, "sort_time"])
    op.create_index("ix_events_group_time", "events", ["event_group", "sort_time"])
