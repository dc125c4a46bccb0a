"""Ingest throughput: convert + de-duplicate + store of N events built from the real sample shapes.

    python bench/ingest.py [--events 100000] [--batch 1000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

Each event is a real sample (oslo 2.0 envelopes, 1.0 bodies, nova versioned, neutron, cinder, glance, heat,
keystone) with a fresh message_id and instance id, so nothing is de-duplicated or collapsed away; then the
same events are fed again to measure the duplicate path. Prints events/s per backend.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import proc_cpu  # noqa: E402

from stackwatch.config.settings import EventsConfig, FloodConfig, ProviderConfig  # noqa: E402
from stackwatch.events.catcher import Catcher  # noqa: E402
from stackwatch.events.model import RawMessage  # noqa: E402
from stackwatch.events.pipeline import catch_all  # noqa: E402
from stackwatch.gctune import tune_for_intake  # noqa: E402
from stackwatch.store.db import open_store  # noqa: E402
from tests.conftest import sample_files  # noqa: E402


def build_events(count: int) -> list[bytes]:
    templates = []
    for path in sample_files():
        doc = orjson.loads(path.read_bytes())
        if "oslo.message" in doc:
            templates.append(("envelope", orjson.loads(doc["oslo.message"])))
        else:
            templates.append(("plain", doc))
    out = []
    for i in range(count):
        kind, body = templates[i % len(templates)]
        body = dict(body)
        body["message_id"] = str(uuid.uuid4())
        body.setdefault("timestamp", "2026-11-22 02:02:49.708327")
        payload = body.get("payload")
        if isinstance(payload, dict):
            payload = dict(payload)
            if "instance_id" in payload:
                payload["instance_id"] = f"vm-{i}"
            if isinstance(payload.get("nova_object.data"), dict):
                payload["nova_object.data"] = {**payload["nova_object.data"], "uuid": f"vm-{i}"}
            body["payload"] = payload
        raw = orjson.dumps(body)
        if kind == "envelope":
            raw = orjson.dumps({"oslo.version": "2.0", "oslo.message": raw.decode()})
        out.append(raw)
    return out


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(url: str, bodies: list[bytes], batch: int, writer: str) -> dict[str, float]:
    store = open_store(url, writer=writer)
    if writer == "process":
        store.writer.start()  # a long-running catcher starts it once; its start-up is not throughput
    provider = ProviderConfig(name="bench", events=EventsConfig(flood=FloodConfig(window_seconds=0)))
    catcher = Catcher(store, provider)
    messages = [RawMessage(body=b, source="bench") for b in bodies]
    results = {}
    for label in ("new", "duplicate"):
        cpu = time.process_time()
        children = _children_cpu()
        pid = store.writer.pid if writer == "process" else None
        child_cpu = proc_cpu.process_cpu(pid)
        start = time.perf_counter()
        stored = catch_all(catcher, messages, batch).stored
        elapsed = time.perf_counter() - start
        results[label] = len(messages) / elapsed
        if label == "new":
            assert stored == len(messages), f"stored {stored} of {len(messages)}"
            results["cpu_us"] = (time.process_time() - cpu) / len(messages) * 1e6
            results["children_before"] = children
            after = proc_cpu.process_cpu(pid)
            if child_cpu is not None and after is not None and store.writer.pid == pid:
                results["child_new_us"] = (after - child_cpu) / len(messages) * 1e6
    assert store.count("bench") == len(messages)
    store.dispose()  # the store process exits: its CPU time is now countable
    if writer == "process":  # both runs: new, then duplicates
        results["child_cpu_us"] = (_children_cpu() - results.pop("children_before")) / (2 * len(messages)) * 1e6
    else:
        results.pop("children_before")
    return results


def _cpu_note(r: dict[str, float]) -> str:
    note = f"CPU per new event: this process {r['cpu_us']:.0f} us"
    if "child_new_us" in r:
        note += f", store process {r['child_new_us']:.0f} us"
    if "child_cpu_us" in r:
        note += f" (store process, mean of new and duplicate runs, start-up included: {r['child_cpu_us']:.0f} us)"
    return note


def split(bodies: list[bytes], batch: int) -> None:
    """Time Catcher.prepare (CPU) and Catcher.commit (store) apart, one thread each, on SQLite."""
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/split.db")
        provider = ProviderConfig(name="bench", events=EventsConfig(flood=FloodConfig(window_seconds=0)))
        catcher = Catcher(store, provider)
        messages = [RawMessage(body=b, source="bench") for b in bodies]
        start = time.perf_counter()
        prepared = [catcher.prepare(messages[i : i + batch]) for i in range(0, len(messages), batch)]
        t_prepare = time.perf_counter() - start
        start = time.perf_counter()
        for p in prepared:
            catcher.commit(p)
        t_commit = time.perf_counter() - start
        store.dispose()
    print(f"split (sqlite): prepare {len(bodies) / t_prepare:,.0f} ev/s, commit {len(bodies) / t_commit:,.0f} ev/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--pg", default=os.environ.get("STACKWATCH_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--split", action="store_true", help="also time prepare and commit apart")
    parser.add_argument("--gc", choices=("tuned", "default"), default="tuned",
                        help="the intake GC settings (gctune.py) or CPython's defaults, to measure what they do")
    parser.add_argument("--writer", choices=("thread", "process", "both"), default="both",
                        help="store writes in a thread of this process, in a store process, or each in turn")
    args = parser.parse_args()

    bodies = build_events(args.events)
    if args.gc == "tuned":
        tune_for_intake()  # as `stackwatch events ingest`, `serve` and `worker catcher` do
    avg = sum(map(len, bodies)) / len(bodies)
    print(f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}")
    print(f"{len(bodies)} events, mean {avg:.0f} bytes, batch {args.batch}")

    writers = ("thread", "process") if args.writer == "both" else (args.writer,)
    for writer in writers:
        with tempfile.TemporaryDirectory() as tmp:
            r = run(f"sqlite:///{tmp}/bench.db", bodies, args.batch, writer)
            print(f"sqlite      {writer:8s} new {r['new']:>9,.0f} ev/s   duplicate {r['duplicate']:>9,.0f} ev/s   "
                  f"{_cpu_note(r)}")

    if args.split:
        split(bodies, args.batch)

    import psycopg

    name = f"stackwatch_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(args.pg, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        for writer in writers:
            url = args.pg.rsplit("/", 1)[0] + f"/{name}"
            r = run(url, bodies, args.batch, writer)
            print(f"postgresql  {writer:8s} new {r['new']:>9,.0f} ev/s   duplicate {r['duplicate']:>9,.0f} ev/s   "
                  f"{_cpu_note(r)}")
            with psycopg.connect(url, autocommit=True) as conn:  # the next writer starts on an empty table
                conn.execute("TRUNCATE events")
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
