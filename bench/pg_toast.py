"""What TOAST compression costs PostgreSQL per stored event: lz4 (what the store asks for) against pglz.

    .venv/bin/python bench/pg_toast.py [--events 50000] [--rounds 3] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Converts N realistic AMQP notifications (tests/amqp/corpus.py, the bodies bench/amqp.py publishes) once, then
writes them in batches of 640 (a drain's mean batch) through `EventStore.write_records` into a scratch database,
once per compression method, interleaved over `--rounds`. Prints the PostgreSQL processes' CPU per row (from
/proc), this process's CPU per row, the table's size and which method compressed how many payloads.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import proc_cpu  # noqa: E402
from amqp import drop_pg, scratch_pg  # noqa: E402  (bench/amqp.py: the scratch database helpers)

from stackwatch.config.settings import ProviderConfig  # noqa: E402
from stackwatch.events.catcher import Catcher  # noqa: E402
from stackwatch.events.model import RawMessage  # noqa: E402
from stackwatch.store.db import open_store  # noqa: E402
from tests.amqp.corpus import envelope_bodies  # noqa: E402

BATCH = 640


def one_run(admin_url: str, method: str, bodies: list[bytes]) -> str:
    name, url = scratch_pg(admin_url)
    store = open_store(url)
    try:
        if method != "lz4":  # the store's own hook asked for lz4 at connect; this one runs after it
            @event.listens_for(store.engine, "connect")
            def _other_method(dbapi_conn, _record) -> None:  # noqa: ANN001
                with dbapi_conn.cursor() as cur:
                    cur.execute(f"SET default_toast_compression = {method}")
                dbapi_conn.commit()

            store.engine.dispose()  # the migration's pooled connection was made before this hook
        catcher = Catcher(store, ProviderConfig(name="bench", events={"flood": {"window_seconds": 0}}))
        now = datetime.now(UTC)
        batches = [catcher.prepare([RawMessage(b, "amqp", None, now) for b in bodies[k:k + BATCH]]).records
                   for k in range(0, len(bodies), BATCH)]
        before = proc_cpu.snapshot()
        cpu, started = time.process_time(), time.perf_counter()
        for records in batches:
            store.write_records(records)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        spent = proc_cpu.spent(before)
        backend = sum(v for k, v in spent.items() if k.startswith("postgres"))
        with psycopg.connect(url) as conn:
            size = conn.execute("SELECT pg_total_relation_size('events')").fetchone()[0]
            methods = dict(conn.execute(
                "SELECT coalesce(pg_column_compression(payload), 'not compressed'), count(*) FROM events GROUP BY 1"
            ).fetchall())
        n = len(bodies)
        return (f"{method:5s} {n / elapsed:8,.0f} rows/s  postgres CPU {backend / n * 1e6:5.1f} us/row  "
                f"this process {cpu / n * 1e6:5.1f} us/row  table {size / 1e6:5.1f} MB  payloads {methods}")
    finally:
        store.dispose()
        drop_pg(admin_url, name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    bodies = [body for _, body in envelope_bodies(args.events)]
    for _ in range(args.rounds):
        for method in ("lz4", "pglz"):
            print(one_run(args.pg, method, bodies), flush=True)


if __name__ == "__main__":
    main()
