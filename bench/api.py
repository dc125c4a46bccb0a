"""The API as an operator runs it: timeline latency for one VM among N events on PostgreSQL, and the cost of
authentication on `/api/v1/events?limit=100`.

    python bench/api.py [--events 10000000] [--vms 20000] [--projects 50] [--seconds 15] [--clients 4]
                        [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--keep]

1. A database `apiauth_bench_<N>` is migrated by `stackwatch db upgrade` and filled with N events inside
   PostgreSQL (`INSERT ... SELECT generate_series`: 1 M rows a statement, indexes built after the load as
   PostgreSQL's bulk-load advice says; reused when it already holds N rows and --keep was given before).
   Each event belongs to one of --vms servers, each server to one of --projects projects.
2. `stackwatch serve --no-catchers` (default settings, `api.auth.tokens: true`) serves it; `stackwatch token
   create` makes a viewer token per project used.
3. Timeline: GET /api/v1/timeline?vm=UUID (the default limit, 500) for random VMs with their project's viewer
   token, one client, keep-alive: p50 / p95 / max over --timeline-requests requests.
4. Throughput: --clients threads GET /api/v1/events?limit=100 for --seconds, with auth (a viewer token, and
   an admin token) and against a second serve without the `api.auth` section (auth off), alternated twice.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psycopg
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "stackwatch"]
INDEXES = {  # built after the load (the migrations' definitions; dropped before it)
    "ix_events_provider_time": "(provider, sort_time)",
    "ix_events_vm_time": "(vm_ref, sort_time) WHERE vm_ref IS NOT NULL",
    "ix_events_host_time": "(host_ref, sort_time) WHERE host_ref IS NOT NULL",
    "ix_events_project_time": "(project_id, sort_time)",
    "ix_events_type_time": "(event_type, sort_time)",
    "ix_events_time": "(sort_time)",
}
FILL = """
INSERT INTO events (provider, message_id, source, event_type, timestamp, received_at, sort_time, project_id,
                    vm_ref, host_ref, event_group, level, collapsed_count, payload)
SELECT 'bench', 'm-' || g, 'amqp',
       (ARRAY['compute.instance.update','compute.instance.exists','compute.instance.power_off.end',
              'compute.instance.create.end','port.update.end'])[1 + g % 5],
       t, t, t, 'project-' || ((g % %(vms)s) % %(projects)s), 'vm-' || (g % %(vms)s), 'cmp-' || (g % 97),
       (ARRAY['configuration','other','power','creation','other'])[1 + g % 5], 'summary', 0,
       json_build_object('n', g, 'state', 'active')
FROM generate_series(%(lo)s, %(hi)s) AS g,
     LATERAL (SELECT timestamptz '2026-01-01' + (g * interval '2 seconds') AS t) AS tt
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(admin_url: str, n: int, vms: int, projects: int, env: dict[str, str]) -> str:
    name = f"apiauth_bench_{n}"
    base = admin_url.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([*CLI, "db", "upgrade"], env={**env, "STACKWATCH_DATABASE_URL": url}, check=True,
                   capture_output=True)
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        if have == n:
            log(f"{name}: {n} events already there")
            return url
        conn.execute("TRUNCATE events")
        for ix in INDEXES:
            conn.execute(f"DROP INDEX IF EXISTS {ix}")
        t0 = time.monotonic()
        step = 1_000_000
        for lo in range(1, n + 1, step):
            hi = min(n, lo + step - 1)
            conn.execute(FILL.replace("%(vms)s", str(vms)).replace("%(projects)s", str(projects))
                         .replace("%(lo)s", str(lo)).replace("%(hi)s", str(hi)))
            log(f"loaded {hi:,} / {n:,} events ({time.monotonic() - t0:.0f} s)")
        for ix, cols in INDEXES.items():
            conn.execute(f"CREATE INDEX {ix} ON events {cols}")
            log(f"index {ix} built ({time.monotonic() - t0:.0f} s)")
        conn.execute("VACUUM ANALYZE events")
        log(f"{n:,} events ready in {time.monotonic() - t0:.0f} s")
    return url


class Serve:
    """`stackwatch serve --no-catchers` with a configuration file, on a free port."""

    def __init__(self, tmp: Path, url: str, auth: bool, env: dict[str, str]) -> None:
        self.port = free_port()
        self.config = tmp / f"serve-{'auth' if auth else 'open'}.yaml"
        doc = {"database": url, "data_dir": str(tmp / "data"), "api": {"port": self.port}}
        if auth:
            doc["api"]["auth"] = {"tokens": True}
        self.config.write_text(yaml.safe_dump(doc))
        self.env = {**env, "STACKWATCH_CONFIG": str(self.config)}
        self.proc = subprocess.Popen([*CLI, "serve", "--no-catchers", "--log-level", "warning"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=(tmp / "serve.err").open("ab"))
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve did not start: {(tmp / 'serve.err').read_text()[-2000:]}")
            time.sleep(0.3)

    def token(self, *args: str) -> str:
        out = subprocess.run([*CLI, "token", "create", *args], env=self.env, check=True, capture_output=True,
                             text=True)
        return out.stdout.strip()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)


def timeline(serve: Serve, tokens: dict[str, str], vms: int, projects: int, requests: int) -> list[float]:
    rng = random.Random(10)
    times = []
    with httpx.Client(base_url=serve.base, timeout=30) as client:
        for i in range(requests + 5):
            vm = rng.randrange(vms)
            project = f"project-{vm % projects}"
            t0 = time.perf_counter()
            r = client.get("/api/v1/timeline", params={"vm": f"vm-{vm}"},
                           headers={"Authorization": f"Bearer {tokens[project]}"})
            elapsed = time.perf_counter() - t0
            r.raise_for_status()
            assert r.json()["events"], r.text[:200]
            if i >= 5:  # the first requests warm the pool and the caches
                times.append(elapsed)
    return times


def store_query(url: str, vms: int, projects: int, requests: int) -> list[float]:
    """The timeline's event query alone, as the API runs it for a viewer (EventStore.query with `projects`)."""
    from stackwatch.store.db import open_store
    from stackwatch.store.events import EventQuery

    store = open_store(url)
    rng = random.Random(11)
    times = []
    try:
        for i in range(requests + 5):
            vm = rng.randrange(vms)
            t0 = time.perf_counter()
            rows = store.query(EventQuery(vm=f"vm-{vm}", limit=500, projects=(f"project-{vm % projects}",)))
            if i >= 5:
                times.append(time.perf_counter() - t0)
            assert rows
    finally:
        store.dispose()
    return sorted(times)


def throughput(base: str, headers: dict[str, str], seconds: float, clients: int) -> float:
    stop = time.monotonic() + seconds
    counts = [0] * clients

    def work(i: int) -> None:
        with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
            while time.monotonic() < stop:
                r = client.get("/api/v1/events", params={"limit": 100})
                r.raise_for_status()
                counts[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--vms", type=int, default=20_000)
    ap.add_argument("--projects", type=int, default=50)
    ap.add_argument("--timeline-requests", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--keep", action="store_true", help="keep the database for the next run")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKWATCH_", "PROMETHEUS_"))}
    log(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs")
    url = prepare(args.pg, args.events, args.vms, args.projects, env)
    with tempfile.TemporaryDirectory(prefix="apiauth-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env["XDG_CONFIG_HOME"] = str(tmp / "xdg")
        secured = Serve(tmp, url, auth=True, env=env)
        try:
            tokens = {f"project-{p}": secured.token("--role", "viewer", "--project", f"project-{p}")
                      for p in range(args.projects)}
            admin = secured.token("--role", "admin")
            t = sorted(timeline(secured, tokens, args.vms, args.projects, args.timeline_requests))
            p95 = t[int(len(t) * 0.95) - 1]
            log(f"timeline of one VM ({args.events:,} events, ~{args.events // args.vms} per VM, viewer token): "
                f"p50 {statistics.median(t) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {t[-1] * 1000:.1f} ms "
                f"over {len(t)} requests")
            q = store_query(url, args.vms, args.projects, args.timeline_requests)
            log(f"the timeline's store query alone (EventStore.query, vm + viewer's project, limit 500): "
                f"p50 {statistics.median(q) * 1000:.1f} ms, p95 {q[int(len(q) * 0.95) - 1] * 1000:.1f} ms")
            open_serve = Serve(tmp, url, auth=False, env=env)
            try:
                viewer = {"Authorization": f"Bearer {tokens['project-0']}"}
                rounds = []
                for _ in range(2):
                    off = throughput(open_serve.base, {}, args.seconds, args.clients)
                    on_viewer = throughput(secured.base, viewer, args.seconds, args.clients)
                    on_admin = throughput(secured.base, {"Authorization": f"Bearer {admin}"}, args.seconds,
                                          args.clients)
                    rounds.append((off, on_viewer, on_admin))
                    log(f"/api/v1/events?limit=100, {args.clients} clients: auth off {off:.0f} req/s, "
                        f"auth on (viewer) {on_viewer:.0f} req/s ({on_viewer / off - 1:+.0%}), "
                        f"auth on (admin) {on_admin:.0f} req/s ({on_admin / off - 1:+.0%})")
            finally:
                open_serve.stop()
        finally:
            secured.stop()
    if not args.keep:
        with psycopg.connect(args.pg, autocommit=True) as admin_conn:
            admin_conn.execute(f'DROP DATABASE IF EXISTS "apiauth_bench_{args.events}" WITH (FORCE)')
    log(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
