"""Where publish-to-stored latency goes at a steady rate: per batch, waiting, converting, writing.

    .venv/bin/python bench/amqp_latency_trace.py [--writer store|thread] [--sqlite] [--rate 2000] [--seconds 8]

Same set-up as the latency part of bench/amqp.py (its own exchange and queue, a publisher process at a
steady rate, a scratch PostgreSQL database or a temp SQLite file), with the catcher's two halves timed:
first message received -> prepare starts (batching wait), prepare, prepared -> commit starts (waiting for
the batch ahead), commit (the store transaction). Prints p50 / p90 / p99 of each, in ms.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import amqp as bench  # noqa: E402

from stackwatch.events.catcher import Catcher  # noqa: E402
from stackwatch.events.monitors.amqp import AmqpMonitor  # noqa: E402
from stackwatch.events.runner import CatcherRunner  # noqa: E402
from stackwatch.gctune import tune_for_intake  # noqa: E402


def quantiles(values: list[float]) -> str:
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(len(values) * q))] * 1000  # noqa: E731
    return f"p50 {pick(0.5):6.1f}  p90 {pick(0.9):6.1f}  p99 {pick(0.99):6.1f} ms"


class TimedCatcher(Catcher):
    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.marks: list[dict[str, float]] = []
        self._by_batch: dict[int, dict[str, float]] = {}

    def prepare(self, batch):  # noqa: ANN001, ANN201
        start = time.time()
        prepared = super().prepare(batch)
        mark = {"n": len(batch), "first": batch[0].received_at.timestamp(), "p0": start, "p1": time.time()}
        self._by_batch[id(prepared)] = mark
        self.marks.append(mark)
        return prepared

    def commit(self, prepared):  # noqa: ANN001, ANN201
        start = time.time()
        report = super().commit(prepared)
        self._by_batch.pop(id(prepared)).update(c0=start, c1=time.time())
        return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writer", choices=("store", "thread"), default="store")
    ap.add_argument("--sqlite", action="store_true", help="into SQLite instead of PostgreSQL")
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    tune_for_intake()
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"bench-{tag}", f"stackwatch-bench-{tag}"
    pg_name, pg_url = bench.scratch_pg(args.pg)
    try:
        url = f"sqlite:///{tempfile.mkdtemp()}/trace.db" if args.sqlite else pg_url
        store = bench.open_bench_store(url, args.writer)
        prov = bench.provider("trace", exchange, queue, args.amqp)
        catcher = TimedCatcher(store, prov)
        runner = CatcherRunner(AmqpMonitor(prov), catcher, writers=store.concurrent_writers).start()  # as build_runner
        assert runner.monitor.connected.wait(10)
        time.sleep(2)
        out = tempfile.mktemp(suffix=".json")
        publisher = mp.get_context("spawn").Process(
            target=bench._steady_publisher, args=(args.amqp, exchange, args.rate, args.seconds, out))
        publisher.start()
        publisher.join()
        time.sleep(2)
        runner.stop()
        store.dispose()
        Path(out).unlink(missing_ok=True)
        marks = [m for m in catcher.marks if "c1" in m]
        print(f"{len(marks)} batches, mean {sum(m['n'] for m in marks) / len(marks):.1f} messages, "
              f"writer {args.writer}, {'SQLite' if args.sqlite else 'PostgreSQL'}, {args.rate} msg/s")
        print(f"first message received -> prepare  {quantiles([m['p0'] - m['first'] for m in marks])}")
        print(f"prepare                           {quantiles([m['p1'] - m['p0'] for m in marks])}")
        print(f"prepared -> commit starts         {quantiles([m['c0'] - m['p1'] for m in marks])}")
        print(f"commit (store transaction)        {quantiles([m['c1'] - m['c0'] for m in marks])}")
    finally:
        bench.clean_up(args.amqp, exchange, queue, args.pg, pg_name)


if __name__ == "__main__":
    main()
