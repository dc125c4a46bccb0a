"""Automation rules as users run them: 100 rules over 100,000 stored events, and event stored -> webhook
received latency at 1,000 events/s, through the real `stackwatch worker handler` process (default settings).

    .venv/bin/python -u bench/rules.py [--events 100000] [--rules 100] [--database sqlite|postgresql]
        [--skip evaluate,handler,latency] [--rate 1000] [--seconds 20]

1. evaluate: the rules engine alone, in this process, on one core: `RuleSet.matching` over the 100,000
   events (already read and decoded), i.e. what evaluation costs per event, without the store.
2. handler: `stackwatch worker handler --config F` (F: a database, one provider, `rules: rules.yaml`; every
   other setting at its default) started once on the empty store (so its positions exist), stopped,
   100,000 events stored, then started again: the clock runs from its start until the `rules` handler's
   position has handled every event (read from `handler_positions` by an outside connection every 50 ms),
   start-up reported apart. This includes reading the stream from the store, decoding payloads, evaluating,
   and recording the matches and their actions (a `log` action at debug level: the outbox and the audit
   are written, nothing is sent).
3. latency: the same worker with a rule whose webhook points at a receiver in this process; events are
   stored at `--rate` per second (batches every 10 ms) by this process, which notes each commit time; the
   receiver notes each arrival: latency = arrival - commit of the event's batch, per event.

Rules: rule i (of 100) listens to one of a dozen event-type globs and requires `project_id` to be project i
and `payload.state` not `deleted`; events are the real samples (tests/data/samples) with fresh message ids
and a project drawn from 1,000, so ~10 % of events belong to a ruled project and match when the glob does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from stackwatch.events.convert import Converter  # noqa: E402
from stackwatch.store.db import open_store  # noqa: E402
from stackwatch.store.stream import HandlerPositionRow  # noqa: E402
from stackwatch.switchboard.conditions import load_yaml  # noqa: E402
from stackwatch.switchboard.routes import RoutingTable  # noqa: E402
from stackwatch.switchboard.rules.engine import RuleSet  # noqa: E402
from stackwatch.switchboard.rules.model import parse_rules  # noqa: E402
from tests.conftest import sample_files  # noqa: E402
from tests.delivery.receiver import Receiver  # noqa: E402

GLOBS = ["compute.instance.*", "instance.*.end", "instance.*.start", "*.error", "volume.*", "network.*",
         "port.*", "image.*", "compute.instance.create.*", "instance.power_*", "identity.*", "snapshot.*"]
PROVIDER = "bench"


def make_rules(n: int, action: str) -> str:
    rules = []
    for i in range(n):
        rules.append({"name": f"rule-{i:03d}", "events": [GLOBS[i % len(GLOBS)]],
                      "when": {"all": [{"field": "project_id", "in": [f"project-{i:04d}"]},
                                       {"not": {"field": "payload.state", "equals": "deleted"}}]},
                      "actions": [json.loads(action)]})
    return json.dumps({"rules": rules}, indent=1)


def make_events(n: int, routes: RoutingTable, seed: int = 7) -> list:
    rng = random.Random(seed)
    converter = Converter(routes)
    bases = []
    for path in sample_files():
        try:
            bases.append(converter.convert(path.read_bytes(), PROVIDER, "bench"))
        except Exception:  # noqa: BLE001 - a sample the converter quarantines
            continue
    now = datetime.now(UTC)
    return [replace(bases[i % len(bases)], message_id=f"bench-{uuid.uuid4().hex}",
                    project_id=f"project-{rng.randrange(1000):04d}", received_at=now) for i in range(n)]


def bench_evaluate(events: list, rules_text: str, routes: RoutingTable) -> None:
    ruleset = RuleSet(parse_rules(load_yaml(rules_text)), routes)
    for event in events[:2000]:
        ruleset.matching(event)  # warm the candidate cache as a running handler has it
    start = time.process_time()
    wall = time.perf_counter()
    matched = sum(len(ruleset.matching(e)) for e in events)
    cpu, wall = time.process_time() - start, time.perf_counter() - wall
    print(f"evaluate: {len(events):,} events x {len(ruleset.rules)} rules: {matched:,} matches, "
          f"{len(events) / cpu:,.0f} events/s of CPU ({cpu:.2f} s CPU, {wall:.2f} s wall)")


def _worker(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stackwatch", "-c", str(config), "worker", "handler",
                             "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=open(log, "ab"),
                            start_new_session=True)


def _handled(engine, handler: str = "rules") -> int | None:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(select(HandlerPositionRow.handled).where(HandlerPositionRow.handler == handler)
                            ).scalar()


def _wait(check, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _database(kind: str, workdir: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}", lambda: None
    import psycopg

    name = f"rules_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:5432/{name}", lambda: admin.execute(
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _config(workdir: Path, url: str, rules_text: str) -> Path:
    (workdir / "rules.yaml").write_text(rules_text)
    config = workdir / "stackwatch.yaml"
    config.write_text(json.dumps({"database": url, "data_dir": str(workdir), "rules": "rules.yaml",
                                  "providers": [{"name": PROVIDER}]}))
    return config


def bench_handler(events: list, rules_text: str, kind: str) -> None:
    with tempfile.TemporaryDirectory(prefix="rules-bench-") as tmp:
        workdir = Path(tmp)
        url, drop = _database(kind, workdir)
        try:
            store = open_store(url)
            config = _config(workdir, url, rules_text)
            proc = _worker(config, workdir / "worker.log")
            _wait(lambda: _handled(store.engine) is not None, 120, "the worker's positions")
            _stop(proc)
            for i in range(0, len(events), 5000):
                store.write_batch(events[i:i + 5000])
            t0 = time.perf_counter()
            proc = _worker(config, workdir / "worker.log")
            _wait(lambda: (_handled(store.engine) or 0) > 0, 120, "the first batch")
            t1 = time.perf_counter()
            _wait(lambda: _handled(store.engine) >= len(events), 1800, "every event handled")
            t2 = time.perf_counter()
            _stop(proc)
            from stackwatch.push.outbox import Outbox

            counts = Outbox(store.engine).counts()
            actions = sum(sum(v.values()) for v in counts.values())
            store.dispose()
            print(f"handler ({kind}): {len(events):,} stored events through `worker handler`: "
                  f"{len(events) / (t2 - t0):,.0f} events/s from process start ({t2 - t0:.1f} s), "
                  f"{len(events) / (t2 - t1):,.0f} events/s after the first batch; {actions:,} actions enqueued")
        finally:
            drop()


def bench_latency(rate: int, seconds: float, kind: str, routes: RoutingTable) -> None:
    with tempfile.TemporaryDirectory(prefix="rules-bench-") as tmp, Receiver() as rx:
        workdir = Path(tmp)
        url, drop = _database(kind, workdir)
        try:
            store = open_store(url)
            rules_text = json.dumps({"rules": [{"name": "latency", "events": ["*"],
                                                "actions": [{"webhook": {"url": rx.url}}]}]})
            config = _config(workdir, url, rules_text)
            proc = _worker(config, workdir / "worker.log")
            _wait(lambda: _handled(store.engine) is not None, 120, "the worker's positions")
            base = make_events(1, routes)[0]
            committed: dict[str, float] = {}
            per_tick = max(1, rate // 100)
            ticks = int(seconds * 100)
            start = time.monotonic()
            for tick in range(ticks):
                batch = [replace(base, message_id=f"lat-{tick}-{j}") for j in range(per_tick)]
                store.write_batch(batch)
                now = time.monotonic()
                for e in batch:
                    committed[e.message_id] = now
                delay = start + (tick + 1) / 100 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            sent_seconds = time.monotonic() - start
            _wait(lambda: len({r.headers["x-stackwatch-event-id"] for r in rx.requests}) >= len(committed), 300,
                  "every webhook")
            _stop(proc)
            first: dict[str, float] = {}
            for r in rx.requests:
                first.setdefault(r.headers["x-stackwatch-event-id"], r.at)
            lat = sorted((first[m] - committed[m]) * 1000 for m in committed)
            q = statistics.quantiles(lat, n=100)
            print(f"latency ({kind}): {len(committed):,} events stored at {len(committed) / sent_seconds:,.0f}/s "
                  f"-> webhook received: p50 {q[49]:.1f} ms, p90 {q[89]:.1f} ms, p99 {q[98]:.1f} ms, "
                  f"max {lat[-1]:.1f} ms; {len(rx.requests) - len(first)} repeated")
            store.dispose()
        finally:
            drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--skip", default="")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    print(f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    routes = RoutingTable.load()
    rules_text = make_rules(args.rules, '{"log": {"level": "debug"}}')
    if not {"evaluate", "handler"} <= skip:
        events = make_events(args.events, routes)
    if "evaluate" not in skip:
        bench_evaluate(events, rules_text, routes)
    if "handler" not in skip:
        bench_handler(events, rules_text, args.database)
    if "latency" not in skip:
        bench_latency(args.rate, args.seconds, args.database, routes)
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
