"""The outbox's claim query on PostgreSQL with statistics taken while `deliveries` was nearly empty.

    .venv/bin/python bench/push_claim_plan.py [--analyze-after]

A new database: 10 deliveries enqueued, delivered, `ANALYZE deliveries` (what autovacuum does early in a fresh
`serve`), then 5,000 deliveries (10 subscriptions x 500 events, one lane each) and a few claims of 32, each
completed. Prints each claim's time; `--analyze-after` runs ANALYZE again before the claims. Found while
bench/push.py's webhook deliveries stalled in `serve` on PostgreSQL (claims of 8-10 s seen in pg_stat_activity).
"""

from __future__ import annotations

import sys
import time
import uuid
from datetime import UTC, datetime

import psycopg

from stackwatch.push.outbox import ClaimBudget, NewDelivery, Outbox
from stackwatch.push.outcome import Outcome
from stackwatch.store.db import make_engine, upgrade

PG = "postgresql://postgres@127.0.0.1:5432"


def main() -> None:
    name = f"push_claim_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(f"{PG}/{name}")
    try:
        upgrade(engine)
        box = Outbox(engine)
        box.enqueue([NewDelivery("subscription", f"warm-{o}", 0, f"w{i}", f"vm:{i}", "push.webhook", {}, body=b"x")
                     for i in range(5) for o in range(2)])
        for d in box.claim(ClaimBudget(32)):
            box.complete(d, Outcome.success(status=200), datetime.now(UTC))
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE deliveries")
        box.enqueue([NewDelivery("subscription", f"bench-{o:03d}", 0, f"m{i}", f"vm:{i}", "push.webhook", {},
                                 body=b"x" * 1500) for i in range(500) for o in range(10)])
        if "--analyze-after" in sys.argv:
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE deliveries")
        for k in range(4):
            start = time.monotonic()
            got = box.claim(ClaimBudget(32, owner_room=lambda _key: 4))
            took = time.monotonic() - start
            for d in got:
                box.complete(d, Outcome.success(status=200), datetime.now(UTC))
            print(f"claim {k}: {len(got)} rows in {took:.3f} s")
    finally:
        engine.dispose()
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
