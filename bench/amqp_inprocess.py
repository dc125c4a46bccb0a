"""The AMQP drain inside the bench's own process (`bench/amqp.py --inprocess`): the old bench's figures.

The same wiring `stackwatch worker catcher` uses (`wiring.build_runner` on a store with store processes,
as `store_writer: auto` picks on two cores) and the same configuration, driven from this process and timed
by the runner's own callback: what differs from the real process is only what the CLI adds around it.
"""

from __future__ import annotations

import time

import amqp as bench
import proc_cpu

from stackwatch.gctune import tune_for_intake
from stackwatch.wiring import build_runner


def drain(url: str, amqp_url: str, exchange: str, queue: str, bodies: list[bytes],
          flood: dict | None) -> dict[str, object]:
    """Publish `bodies`, drain them through an in-process runner; rate = N / start to last stored batch."""
    n = len(bodies)
    bench.publish_backlog(amqp_url, exchange, queue, bodies)
    store = bench.open_bench_store(url, "store")
    tune_for_intake()  # as `worker catcher` does (idempotent)
    done = {"n": 0, "t": 0.0}

    def on_stored(batch, report, elapsed) -> None:  # noqa: ANN001
        done["n"] += len(batch)
        done["t"] = time.perf_counter()

    runner = build_runner(bench.provider(bench.PROVIDER, exchange, queue, amqp_url, flood), store,
                          on_stored=on_stored)
    cpu_before = proc_cpu.snapshot()
    started = time.perf_counter()
    runner.start()
    while done["n"] < n:
        time.sleep(0.005)
        if time.perf_counter() - started > 600:
            raise RuntimeError(f"drain stalled at {done['n']} of {n}")
    cpu = proc_cpu.spent(cpu_before, labels={p: "store process" for p in proc_cpu.descendants(bench.os.getpid())})
    time.sleep(0.2)  # let the last ack reach the broker
    runner.stop()
    stats = runner.stats
    store.dispose()
    if stats.stored + stats.collapsed != n:
        raise RuntimeError(f"stored {stats.stored} + collapsed {stats.collapsed}, published {n}")
    seconds = done["t"] - started
    return {"rate": n / seconds, "seconds": round(seconds, 3), "rows": stats.stored, "collapsed": stats.collapsed,
            "cpu": proc_cpu.per_message(cpu, n)}
