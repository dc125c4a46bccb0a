"""Panko backlog drain as users run it: a real Panko 10 API (tests/monitors/peers) holding N events, then
`stackwatch worker catcher --provider bench` (default settings: SQLite in its data dir, `events.panko` with
only `endpoint`, `auth: none` + the noauth headers, and `interval_seconds`) started as a process.

    .venv/bin/python -u bench/panko.py [--events 100000] [--same-time 1000] [--page-size 100]

The events are recorded through Panko's own storage driver (`record_events`), into a SQLite file under
/dev/shm when it exists (Panko commits once per event; on disk seeding 100,000 takes far longer than the
drain). Every `--same-time` consecutive events share one `generated` value. The clock starts when the
worker is started (its start-up included) and stops when `stackwatch events count` would see N; requests are
counted from panko-api's own access log (one line per request).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.monitors.peers.panko_api import NOAUTH_HEADERS, Panko, event  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--same-time", type=int, default=1000)
    ap.add_argument("--page-size", type=int, default=100)
    args = ap.parse_args()
    shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    tmp = Path(tempfile.mkdtemp(prefix="bench-panko-", dir=shm))
    panko = Panko(tmp / "panko", f"sqlite:///{tmp / 'panko' / 'panko.sqlite'}")
    panko.configure()
    panko.start()
    try:
        base = datetime(2026, 1, 1)
        t0 = time.monotonic()
        chunk = 5000
        for start in range(0, args.events, chunk):
            stop = min(args.events, start + chunk)
            panko.record([event(i, (base + timedelta(seconds=i // args.same_time)).isoformat(),
                                prefix="0000bbbb-0000-0000-0000") for i in range(start, stop)])
            print(f"seeded {min(args.events, start + chunk)} ({time.monotonic() - t0:.0f} s)", flush=True)
        log = tmp / "panko" / "api.out"
        before = log.read_text(errors="replace").count("GET /v2/events")
        cfg = {"providers": [{"name": "bench", "events": {"monitor": "panko", "panko": {
            "endpoint": panko.url, "auth": "none", "headers": NOAUTH_HEADERS, "page_size": args.page_size,
            "interval_seconds": 1}}}]}
        (tmp / "stackwatch.yaml").write_text(yaml.safe_dump(cfg))
        env = {**os.environ, "STACKWATCH_DATA_DIR": str(tmp / "data")}
        db = create_engine(f"sqlite:///{tmp / 'data' / 'stackwatch.db'}")
        t_start = time.monotonic()
        worker = subprocess.Popen([sys.executable, "-m", "stackwatch", "-c", str(tmp / "stackwatch.yaml"), "worker",
                                   "catcher", "--provider", "bench"], env=env,
                                  stdout=(tmp / "worker.log").open("wb"), stderr=subprocess.STDOUT)
        stored = 0
        try:
            while stored < args.events:
                time.sleep(0.5)
                if worker.poll() is not None:
                    raise SystemExit(f"worker exited {worker.returncode}: {tmp / 'worker.log'}")
                try:
                    with db.connect() as conn:
                        stored = conn.execute(text("SELECT count(*) FROM events")).scalar_one()
                except Exception:  # noqa: BLE001 - not created yet
                    stored = 0
            elapsed = time.monotonic() - t_start
        finally:
            worker.terminate()
            worker.wait(30)
        requests = log.read_text(errors="replace").count("GET /v2/events") - before
        print(f"machine: {platform.machine()} {os.cpu_count()} CPU, load {os.getloadavg()[0]:.1f}")
        print(f"drained {stored} events ({args.same_time} per generated time, page_size {args.page_size}) in "
              f"{elapsed:.1f} s = {stored / elapsed:.0f} events/s (worker start-up included); "
              f"{requests} requests = {requests * 1000 / stored:.1f} per 1,000 events")
    finally:
        panko.stop()


if __name__ == "__main__":
    main()
