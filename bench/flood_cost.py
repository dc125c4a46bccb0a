"""What flood control costs on the intake path users run: flood on (the default) against off, interleaved.

    python bench/flood_cost.py [--events 50000] [--rounds 3] [--db sqlite|pg|both]

Each trial is a fresh process that runs the runner `worker catcher` builds (`CatcherRunner`, pipelined, as
many writers as the store takes, over the store process `store_writer: auto` picks on a multi-core machine),
fed from memory instead of a broker, over the AMQP bench corpus (tests/amqp/corpus.py: about a third of its
events share a flood key, as keystone and neutron notifications do). Printed per trial: events/s from the
first batch to the last acknowledgement, and CPU per event over that stretch of the trial process and of
its store process(es), and the mean number of transactions in flight (time inside `Catcher.commit`
summed over the writers, over the wall time: the writers' overlap, which waiting for one another loses).
`--cpu`: one thread, prepare + commit on SQLite, CPU per event only. Run it with PYTHONPATH pointing at
another tree to compare code.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import proc_cpu  # noqa: E402


def _trial(db: str, flood: bool, events: int, pg_admin: str) -> dict[str, float]:
    from stackwatch.config.settings import ProviderConfig
    from stackwatch.events.catcher import Catcher
    from stackwatch.events.model import RawMessage
    from stackwatch.events.monitors.base import Availability, Batch, Monitor
    from stackwatch.events.runner import CatcherRunner
    from stackwatch.gctune import tune_for_intake
    from stackwatch.store.db import choose_writer, open_store
    from tests.amqp.corpus import envelope_bodies

    class MemoryMonitor(Monitor):
        name = "memory"

        def __init__(self, provider: ProviderConfig, batches: list[Batch]) -> None:
            super().__init__(provider)
            self._batches, self.acked, self.done = batches, 0, threading.Event()

        @classmethod
        def available(cls, provider: ProviderConfig) -> Availability:
            return Availability(True, "bench")

        def start(self) -> None: ...

        def stop(self) -> None:
            self.done.set()

        def batches(self) -> Iterator[Batch]:
            yield from self._batches
            self.done.wait()

        def ack(self, batch: Batch) -> None:
            self.acked += len(batch)
            if self.acked >= events:
                self.done.set()

    bodies = [b for _, b in envelope_bodies(events)]
    batches = [Batch(tuple(RawMessage(b, "amqp") for b in bodies[i : i + 1000]), i // 1000 + 1)
               for i in range(0, events, 1000)]
    tmp = tempfile.mkdtemp(prefix="flood-cost-")
    dbname = None
    if db == "sqlite":
        url = f"sqlite:///{tmp}/bench.db"
    else:
        import psycopg

        dbname = f"flood_cost_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(pg_admin, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{dbname}"')
        url = f"{pg_admin.rsplit('/', 1)[0]}/{dbname}"
    provider = ProviderConfig.model_validate(
        {"name": "bench", "events": {} if flood else {"flood": {"window_seconds": 0}}})
    store = open_store(url, writer=choose_writer("auto", long_running=True))
    if hasattr(store, "writer"):
        store.writer.start()
    class TimedCatcher(Catcher):
        """Adds up the time spent in transactions: over the wall time, the mean number in flight."""

        busy = 0.0
        lock = threading.Lock()

        def commit(self, prepared):  # noqa: ANN001, ANN202
            started = time.perf_counter()
            try:
                return super().commit(prepared)
            finally:
                with self.lock:
                    TimedCatcher.busy += time.perf_counter() - started

    monitor = MemoryMonitor(provider, batches)
    runner = CatcherRunner(monitor, TimedCatcher(store, provider), writers=getattr(store, "concurrent_writers", 1))
    tune_for_intake()
    pids = [pid for pid in getattr(getattr(store, "writer", None), "pids", []) if pid]
    store_cpu = sum(proc_cpu.process_cpu(pid) or 0.0 for pid in pids)
    cpu, start = time.process_time(), time.perf_counter()
    runner.start()
    monitor.done.wait()
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    store_cpu = sum(proc_cpu.process_cpu(pid) or 0.0 for pid in pids) - store_cpu
    runner.stop()
    stats = vars(runner.stats)
    rows = store.count("bench")
    store.dispose()
    if dbname:
        import psycopg

        with psycopg.connect(pg_admin, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    return {"ev_s": events / elapsed, "parent_us": cpu / events * 1e6, "in_flight": TimedCatcher.busy / elapsed,
            "store_us": store_cpu / events * 1e6, "rows": rows,
            "collapsed": stats["collapsed"], "stored": stats["stored"]}


def cpu_per_event(events: int, rounds: int) -> None:
    """One thread, no pipeline: `Catcher.prepare` + `commit` on SQLite (in-process writer), CPU per event of
    flood on and off, interleaved; the least noisy figure of what flood control itself costs."""
    from stackwatch.config.settings import ProviderConfig
    from stackwatch.events.catcher import Catcher
    from stackwatch.events.model import RawMessage
    from stackwatch.gctune import tune_for_intake
    from stackwatch.store.db import open_store
    from tests.amqp.corpus import envelope_bodies

    tune_for_intake()
    bodies = [b for _, b in envelope_bodies(events)]
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    for round_ in range(rounds):
        for flood in (("on", "off") if round_ % 2 == 0 else ("off", "on")):
            with tempfile.TemporaryDirectory() as tmp:
                store = open_store(f"sqlite:///{tmp}/cpu.db")
                provider = ProviderConfig.model_validate(
                    {"name": "bench", "events": {} if flood == "on" else {"flood": {"window_seconds": 0}}})
                catcher = Catcher(store, provider)
                batches = [[RawMessage(b, "amqp") for b in bodies[i : i + 1000]] for i in range(0, events, 1000)]
                started = time.process_time()
                for batch in batches:
                    catcher.commit(catcher.prepare(batch))
                cpu[flood].append((time.process_time() - started) / events * 1e6)
                store.dispose()
    for flood in ("on", "off"):
        figures = ", ".join(f"{x:.1f}" for x in sorted(cpu[flood]))
        print(f"sqlite, one thread, flood {flood:3}: CPU per event {figures} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", choices=("sqlite", "pg", "both"), default="both")
    parser.add_argument("--pg", default=os.environ.get("STACKWATCH_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--cpu", action="store_true", help="only the one-thread CPU per event (see cpu_per_event)")
    parser.add_argument("--trial", nargs=2, metavar=("DB", "FLOOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cpu:
        cpu_per_event(args.events, args.rounds)
        return
    if args.trial:
        print(json.dumps(_trial(args.trial[0], args.trial[1] == "on", args.events, args.pg)))
        return
    dbs = ["sqlite", "pg"] if args.db == "both" else [args.db]
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for round_ in range(args.rounds):
        for db in dbs:
            for flood in (("on", "off") if round_ % 2 == 0 else ("off", "on")):  # interleaved, order alternating
                out = subprocess.run([sys.executable, __file__, "--trial", db, flood, "--events", str(args.events),
                                      "--pg", args.pg], capture_output=True, text=True, check=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                results.setdefault((db, flood), []).append(r)
                print(f"{db:6} flood {flood:3}: {r['ev_s']:8,.0f} ev/s  CPU/event: runner {r['parent_us']:5.1f} us, "
                      f"store process {r['store_us']:5.1f} us; transactions in flight {r['in_flight']:.2f} "
                      f"({r['rows']} rows, {r['collapsed']} collapsed)",
                      flush=True)
    for db in dbs:
        on, off = results[(db, "on")], results[(db, "off")]
        ratio = sorted(a["ev_s"] / b["ev_s"] for a, b in zip(on, off, strict=True))
        cpu = sorted((a["parent_us"] + a["store_us"]) / (b["parent_us"] + b["store_us"]) for a, b in zip(on, off,
                                                                                                         strict=True))
        print(f"{db}: flood on / off, same round: ev/s {', '.join(f'{x:.2f}' for x in ratio)}; "
              f"CPU per event {', '.join(f'{x:.2f}' for x in cpu)}")


if __name__ == "__main__":
    main()
