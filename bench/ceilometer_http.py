"""Ceilometer http-publisher receiver latency as users run it: `stackwatch serve` (default settings, SQLite in
its data dir, one provider with `monitor: ceilometer-http`) and POSTs shaped like the real agent's (one event
per POST, tests/monitors data from the shared telemetry captures), sent at a steady rate from 64 threads, each
with its own keep-alive connection (the publisher's pool holds up to 64 in parallel).

    .venv/bin/python -u bench/ceilometer_http.py [--rate 500] [--seconds 20] [--threads 64] [--database URL]

Latency = from just before the request is written to the complete response (which the receiver sends only
after the event is stored). Reports p50/p90/p99/max, the achieved rate and the stored count (checked against
what was sent).
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]


def event_body(i: int) -> bytes:
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{i % 1000000:06d}"
    iid = str(uuid.uuid4())
    return orjson.dumps([{
        "message_id": str(uuid.uuid4()), "event_type": "compute.instance.create.end", "generated": now,
        "traits": [["service", 1, "compute"], ["request_id", 1, f"req-{uuid.uuid4()}"],
                   ["project_id", 1, "7d1b0d1b6a7e4b1d9d3e1c2f0a0b0c0d"],
                   ["user_id", 1, "1f0e2d3c4b5a69788796a5b4c3d2e1f0"],
                   ["tenant_id", 1, "7d1b0d1b6a7e4b1d9d3e1c2f0a0b0c0d"],
                   ["instance_id", 1, iid], ["display_name", 1, f"vm-{i}"], ["resource_id", 1, iid],
                   ["host", 1, "host1"], ["memory_mb", 2, 512], ["disk_gb", 2, 1], ["vcpus", 2, 1],
                   ["instance_type", 1, "m1.tiny"], ["state", 1, "active"], ["launched_at", 4, now]],
        "raw": {}}])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--database", default=None, help="default: SQLite in the data dir (stackwatch's default)")
    ap.add_argument("--store-writer", default=None, help="store_writer setting (default: auto)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ceilo-"))
    cfg: dict = {"providers": [{"name": "bench", "events": {"monitor": "ceilometer-http"}}],
                 "handlers": {"full_refresh_seconds": 0}}
    if args.database:
        cfg["database"] = args.database
    if args.store_writer:
        cfg["store_writer"] = args.store_writer
    (tmp / "stackwatch.yaml").write_text(yaml.safe_dump(cfg))
    port = free_port()
    env = {**os.environ, "STACKWATCH_DATA_DIR": str(tmp / "data")}
    serve = subprocess.Popen([sys.executable, "-m", "stackwatch", "-c", str(tmp / "stackwatch.yaml"), "serve",
                              "--port", str(port), "--log-level", "warning"], env=env,
                             stdout=(tmp / "serve.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        total = int(args.rate * args.seconds)
        bodies = [event_body(i) for i in range(total)]
        latencies: list[float] = []
        errors: list[int] = []
        lock = threading.Lock()
        start = time.monotonic() + 0.5
        interval = 1.0 / args.rate
        counter = iter(range(total))

        def worker() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine, bad = [], []
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                due = start + i * interval
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                t0 = time.perf_counter()
                conn.request("POST", "/api/v1/ingest/ceilometer/bench", bodies[i],
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                mine.append(time.perf_counter() - t0)
                if resp.status != 200:
                    bad.append(resp.status)
            conn.close()
            with lock:
                latencies.extend(mine)
                errors.extend(bad)

        threads = [threading.Thread(target=worker) for _ in range(args.threads)]
        t_begin = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - max(t_begin, start)
        latencies.sort()

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

        out = subprocess.run([sys.executable, "-m", "stackwatch", "-c", str(tmp / "stackwatch.yaml"), "events",
                              "count"], env=env, capture_output=True, text=True)
        print(f"machine: {platform.machine()} {os.cpu_count()} CPU, load {os.getloadavg()[0]:.1f}; "
              f"database: {args.database or 'sqlite (default)'}; store_writer: {args.store_writer or 'auto'}")
        print(f"POSTs: {len(latencies)} in {elapsed:.1f} s = {len(latencies) / elapsed:.0f}/s "
              f"(target {args.rate:g}/s, {args.threads} in parallel); non-200: {len(errors)}")
        print(f"latency ms: p50 {pct(50):.1f}  p90 {pct(90):.1f}  p99 {pct(99):.1f}  max {latencies[-1] * 1000:.1f}")
        print(f"stored (stackwatch events count): {out.stdout.strip()}")
    finally:
        serve.terminate()
        serve.wait(30)


if __name__ == "__main__":
    main()
