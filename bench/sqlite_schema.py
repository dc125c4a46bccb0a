"""SQLite insert cost of the event table's layout and of the insert statement, on records the catcher builds.

    .venv/bin/python bench/sqlite_schema.py [--events 30000] [--runs 3]

Builds records from the real sample shapes (as bench/ingest.py), then inserts them in transactions of 1,000
into fresh databases laid out as before migration 0003 (4 KiB pages, full VM/host indexes, a group index) and
after it (8 KiB pages, partial VM/host indexes, no group index), each with the store's statement (executemany
of one INSERT ... ON CONFLICT DO NOTHING) and with the one it replaced (multi-row INSERT ... VALUES (..),(..)
... RETURNING, 500 rows a statement). Prints CPU and wall time per row and bytes per row.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import build_events  # noqa: E402

from stackwatch.config.settings import EventsConfig, FloodConfig, ProviderConfig  # noqa: E402
from stackwatch.events.catcher import Catcher  # noqa: E402
from stackwatch.events.model import RawMessage  # noqa: E402
from stackwatch.store.inserts import _INSERT_COLUMNS, _SQLITE_INSERT, RECORD_COLUMNS, times_as_text  # noqa: E402

COLUMNS = (*RECORD_COLUMNS, "sort_time", "collapsed_count")
TABLE = f"CREATE TABLE events (id INTEGER PRIMARY KEY, {', '.join(c + ' TEXT' for c in COLUMNS)})"
COMMON = [
    "CREATE UNIQUE INDEX uq ON events (provider, message_id)",
    "CREATE INDEX ix_p ON events (provider, sort_time)",
    "CREATE INDEX ix_pr ON events (project_id, sort_time)",
    "CREATE INDEX ix_t ON events (event_type, sort_time)",
    "CREATE INDEX ix_time ON events (sort_time)",
]
LAYOUTS = {
    "before 0003 (4 KiB, full vm/host, group)": (4096, COMMON + [
        "CREATE INDEX ix_vm ON events (vm_ref, sort_time)",
        "CREATE INDEX ix_h ON events (host_ref, sort_time)",
        "CREATE INDEX ix_g ON events (event_group, sort_time)",
    ]),
    "after 0003 (8 KiB, partial vm/host)": (8192, COMMON + [
        "CREATE INDEX ix_vm ON events (vm_ref, sort_time) WHERE vm_ref IS NOT NULL",
        "CREATE INDEX ix_h ON events (host_ref, sort_time) WHERE host_ref IS NOT NULL",
    ]),
}


def insert_all(path: str, page_size: int, ddl: list[str], rows: list[list[object]], statement: str
               ) -> tuple[float, float, float]:
    con = sqlite3.connect(path, isolation_level=None)
    for pragma in (f"page_size={page_size}", "journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536",
                   "wal_autocheckpoint=10000"):
        con.execute(f"PRAGMA {pragma}")
    for statement in [TABLE, *ddl]:
        con.execute(statement)
    one = "(" + ",".join("?" * len(COLUMNS)) + ")"
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(rows), 1000):
        con.execute("BEGIN")
        if statement == "executemany":
            con.executemany(_SQLITE_INSERT, rows[start : start + 1000])
        else:
            for chunk_start in range(start, min(start + 1000, len(rows)), 500):
                chunk = rows[chunk_start : min(chunk_start + 500, start + 1000, len(rows))]
                sql = (f"INSERT INTO events ({_INSERT_COLUMNS}) VALUES {','.join([one] * len(chunk))} "
                       "ON CONFLICT (provider, message_id) DO NOTHING RETURNING message_id")
                # the derived columns as the old statement bound them
                con.execute(sql, [v for row in chunk for v in (*row, row[4] or row[5], 0)]).fetchall()
        con.execute("COMMIT")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return cpu, wall, os.path.getsize(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=30_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    catcher = Catcher(None, ProviderConfig(name="bench", events=EventsConfig(flood=FloodConfig(window_seconds=0))))
    bodies = build_events(args.events)
    rows: list[list[object]] = []
    for start in range(0, len(bodies), 1000):
        prepared = catcher.prepare([RawMessage(body=b) for b in bodies[start : start + 1000]])
        rows += times_as_text(prepared.records, "sqlite")  # the times as the store writes them
    n = len(rows)
    print(f"{n} rows from the real sample shapes; {args.runs} runs per layout and statement, best shown")
    with tempfile.TemporaryDirectory() as tmp:
        for (label, (page_size, ddl)), statement in itertools.product(LAYOUTS.items(), ("values", "executemany")):
            results = [insert_all(f"{tmp}/{i}-{page_size}-{statement}.db", page_size, ddl, rows, statement)
                       for i in range(args.runs)]
            cpu, wall, size = min(results)
            print(f"{label:38s} {statement:11s} CPU {cpu / n * 1e6:5.1f} us/row  wall {wall / n * 1e6:5.1f} us/row  "
                  f"{n / wall:>7,.0f} rows/s  {size / n:,.0f} bytes/row   (CPU of all runs: "
                  f"{', '.join(f'{r[0] / n * 1e6:.1f}' for r in results)})")


if __name__ == "__main__":
    main()
