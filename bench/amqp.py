"""AMQP monitor throughput and latency against the real RabbitMQ, PostgreSQL and SQLite.

    .venv/bin/python bench/amqp.py [--events 100000] [--rate 2000] [--seconds 20]
        [--amqp amqp://guest:guest@127.0.0.1:5672/] [--pg postgresql://postgres@127.0.0.1:5432/postgres]

One run, same broker, same message bodies (realistic oslo 2.0 envelopes of ~2.3 KB built from the real
samples in tests/amqp/data, fresh message ids):
1. raw ceiling: a plain pika consumer, prefetch 1000, one `basic_ack(multiple=True)` per 1000 messages,
   draining a backlog of N messages (no parsing, no storing);
2. stackwatch: the AMQP monitor + runner + catcher draining the same backlog of N into PostgreSQL, then
   into SQLite (rate = N / time from start to the last batch committed and acknowledged);
3. latency: a publisher process sends at a steady rate; publish-to-stored latency per message (time the
   batch holding it was committed, minus the time it was published), p50 / p99, into the PostgreSQL
   table the drain filled.
Each drain also prints the CPU every process on the machine spent per message (bench/proc_cpu.py).
Uses its own exchange and queue names (deleted afterwards) and a scratch PostgreSQL database.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import pika
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import proc_cpu  # noqa: E402

from stackwatch.config.settings import ProviderConfig  # noqa: E402
from stackwatch.events.catcher import Catcher  # noqa: E402
from stackwatch.events.monitors.amqp import AmqpMonitor  # noqa: E402
from stackwatch.events.process_runner import ProcessCatcherRunner  # noqa: E402
from stackwatch.events.runner import CatcherRunner  # noqa: E402
from stackwatch.gctune import tune_for_intake  # noqa: E402
from stackwatch.store.db import open_store  # noqa: E402
from tests.amqp.corpus import envelope_bodies  # noqa: E402

ROUTING_KEY = "notifications.info"


def provider(name: str, exchange: str, queue: str, amqp_url: str) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        events={
            "monitor": "amqp",
            "flood": {"window_seconds": 0},
            "amqp": {"urls": [amqp_url], "exchanges": [exchange], "topics": ["notifications"], "queue": queue,
                     **bench_overrides()},
        },
    )


def bench_overrides() -> dict[str, float]:
    """events.amqp keys set from the environment, for A/B runs: SW_FLUSH_MS, SW_PREFETCH, SW_BATCH_SIZE."""
    keys = {"SW_FLUSH_MS": ("flush_ms", float), "SW_PREFETCH": ("prefetch", int), "SW_BATCH_SIZE": ("batch_size", int)}
    return {key: cast(os.environ[env]) for env, (key, cast) in keys.items() if os.environ.get(env)}


def declare(ch, exchange: str, queue: str) -> None:  # noqa: ANN001
    ch.exchange_declare(exchange, "topic", durable=False)
    ch.queue_declare(queue, durable=True)
    ch.queue_bind(queue, exchange, "notifications.*")


def publish_backlog(amqp_url: str, exchange: str, queue: str, bodies: list[bytes]) -> float:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    declare(ch, exchange, queue)
    props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
    started = time.perf_counter()
    for body in bodies:
        ch.basic_publish(exchange, ROUTING_KEY, body, props)
    while ch.queue_declare(queue, passive=True).method.message_count < len(bodies):
        conn.sleep(0.05)
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


class PlainConsumer:
    """pika's on_message for `n` messages: nothing parsed or stored, one `basic_ack(multiple=True)` every
    `ack_every`, `stop_consuming` at the last; `count` is how many arrived."""

    def __init__(self, n: int, ack_every: int) -> None:
        self.n, self.ack_every, self.count = n, ack_every, 0

    def __call__(self, channel, method, _props, _body) -> None:  # noqa: ANN001
        self.count += 1
        if self.count % self.ack_every == 0 or self.count == self.n:
            channel.basic_ack(method.delivery_tag, multiple=True)
        if self.count >= self.n:
            channel.stop_consuming()


def raw_ceiling(amqp_url: str, queue: str, n: int) -> float:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=1000)
    started = time.perf_counter()
    cpu = time.process_time()
    machine = proc_cpu.snapshot()
    ch.basic_consume(queue, PlainConsumer(n, ack_every=1000))
    ch.start_consuming()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    conn.close()
    # the consumer's own CPU per message: when it is well below wall time per message, the broker is the limit
    print(f"raw consumer: {cpu / n * 1e6:.1f} us CPU per message, {elapsed / n * 1e6:.1f} us wall per message; "
          f"{proc_cpu.per_message(proc_cpu.spent(machine), n)}")
    return n / elapsed


def open_bench_store(store_url: str, writer: str):  # noqa: ANN201
    """writer `store`: the thread runner writing through a store process (`store_writer: process`)."""
    store = open_store(store_url, writer="process" if writer == "store" else "thread")
    if writer == "store":
        store.writer.start()
    return store


def make_runner(writer: str, store, store_url: str, prov: ProviderConfig, on_stored):  # noqa: ANN001, ANN201
    if writer == "process":
        return ProcessCatcherRunner(AmqpMonitor(prov), store_url, on_stored=on_stored)
    # as build_runner does: as many writers as the store can use (SW_WRITERS overrides, for comparisons)
    writers = int(os.environ.get("SW_WRITERS", "0")) or store.concurrent_writers
    return CatcherRunner(AmqpMonitor(prov), Catcher(store, prov), on_stored=on_stored, writers=writers)


def drain(store_url: str, amqp_url: str, exchange: str, queue: str, n: int, name: str,
          writer: str) -> dict[str, float]:
    store = open_bench_store(store_url, writer)
    prov = provider(name, exchange, queue, amqp_url)
    done = {"n": 0, "t": 0.0, "first_t": 0.0, "first_n": 0}

    def on_stored(batch, report, elapsed) -> None:  # noqa: ANN001
        if not done["n"]:
            done["first_t"], done["first_n"] = time.perf_counter(), len(batch)
        done["n"] += len(batch)
        done["t"] = time.perf_counter()

    runner = make_runner(writer, store, store_url, prov, on_stored)
    cpu_before = proc_cpu.snapshot()
    started = time.perf_counter()
    runner.start()
    while done["n"] < n:
        time.sleep(0.005)
        if time.perf_counter() - started > 600:
            raise RuntimeError(f"drain stalled at {done['n']} of {n}")
    elapsed = done["t"] - started
    cpu = proc_cpu.spent(cpu_before)  # the first ~10 ms after the last commit too: the 5 ms polls see it late
    time.sleep(0.2)  # let the last ack reach the broker
    runner.stop()
    stored = store.count(name)
    store.dispose()
    if stored != n:
        raise RuntimeError(f"stored {stored}, expected {n}")
    steady = (n - done["first_n"]) / (done["t"] - done["first_t"])
    return {"rate": n / elapsed, "seconds": elapsed, "batches": runner.stats.batches,
            "first_batch_after_s": done["first_t"] - started, "rate_after_first_batch": steady,
            "cpu": proc_cpu.per_message(cpu, n)}


def _steady_publisher(amqp_url: str, exchange: str, rate: int, seconds: float, out_path: str) -> None:
    bodies = envelope_bodies(int(rate * seconds), prefix="lat-")
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
    sent: list[tuple[str, float]] = []
    start = time.time()
    for i, (mid, body) in enumerate(bodies):
        due = start + i / rate
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        ch.basic_publish(exchange, ROUTING_KEY, body, props)
        sent.append((mid, time.time()))
    conn.close()
    Path(out_path).write_bytes(orjson.dumps(sent))


def latency(store_url: str, amqp_url: str, exchange: str, queue: str, rate: int, seconds: float,
            name: str, writer: str) -> dict[str, float]:
    store = open_bench_store(store_url, writer)
    prov = provider(name, exchange, queue, amqp_url)
    committed: list[tuple[object, float]] = []
    total = int(rate * seconds)

    def on_stored(batch, report, elapsed) -> None:  # noqa: ANN001
        committed.append((batch, time.time()))

    runner = make_runner(writer, store, store_url, prov, on_stored)
    runner.start()
    assert runner.monitor.connected.wait(10)
    time.sleep(3)  # the writer process is up
    out = tempfile.mktemp(suffix=".json")
    proc = mp.get_context("spawn").Process(target=_steady_publisher, args=(amqp_url, exchange, rate, seconds, out))
    checkpoints, backend_writes = _checkpoints(store_url), _backend_writes(store_url)
    cpu_before, steal_before = proc_cpu.snapshot(), proc_cpu.steal_seconds()
    phase = time.perf_counter()
    proc.start()
    proc.join()
    deadline = time.time() + 60
    while sum(len(b) for b, _ in committed) < total and time.time() < deadline:
        time.sleep(0.05)
    cpu = proc_cpu.per_message(proc_cpu.spent(cpu_before), total)
    stolen = (proc_cpu.steal_seconds() - steal_before) / (time.perf_counter() - phase) / (os.cpu_count() or 1)
    checkpoints = _checkpoints(store_url) - checkpoints
    backend_writes = _backend_writes(store_url) - backend_writes
    runner.stop()
    store.dispose()
    sent = dict(orjson.loads(Path(out).read_bytes()))
    os.unlink(out)
    lat, broker, intake = [], [], []  # publish -> stored = (publish -> received) + (received -> stored)
    for batch, t in committed:
        for msg in batch.messages:
            mid = orjson.loads(orjson.loads(msg.body)["oslo.message"])["message_id"]
            if mid in sent:
                lat.append((t - sent[mid]) * 1000)
                received = msg.received_at.timestamp()
                broker.append((received - sent[mid]) * 1000)
                intake.append((t - received) * 1000)
    lat.sort()
    q = statistics.quantiles(lat, n=100)
    qb, qi = statistics.quantiles(broker, n=100), statistics.quantiles(intake, n=100)
    return {"count": len(lat), "p50_ms": q[49], "p99_ms": q[98], "max_ms": lat[-1],
            "publish_to_received_p50_p99_ms": (round(qb[49], 1), round(qb[98], 1)),
            "received_to_stored_p50_p99_ms": (round(qi[49], 1), round(qi[98], 1)),
            "mean_batch": len(lat) / max(1, len(committed)), "checkpoints": checkpoints,
            "buffers_written_by_backends": backend_writes,
            "cpu_stolen_by_other_guests": round(stolen, 3), "cpu": cpu}


def _pg_admin(pg_url: str) -> psycopg.Connection:
    """An autocommit connection for the bench's own statements (SQLAlchemy URLs accepted)."""
    return psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def _checkpoints(pg_url: str) -> int:
    """PostgreSQL checkpoints so far, timed and requested: tells whether one fell inside the latency phase."""
    with _pg_admin(pg_url) as conn:
        return sum(conn.execute("SELECT checkpoints_timed, checkpoints_req FROM pg_stat_bgwriter").fetchone())


def _backend_writes(pg_url: str) -> int:
    """Shared buffers PostgreSQL's backends wrote out themselves (no clean buffer left for them) so far."""
    with _pg_admin(pg_url) as conn:
        return conn.execute("SELECT buffers_backend FROM pg_stat_bgwriter").fetchone()[0]


def scratch_pg(pg_url: str) -> tuple[str, str]:
    name = f"bench_amqp_{uuid.uuid4().hex[:8]}"
    with _pg_admin(pg_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_url.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def drop_pg(pg_url: str, name: str) -> None:
    with _pg_admin(pg_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def delete_queue(amqp_url: str, exchange: str, queue: str) -> None:
    """Delete a run's queue and exchange (the benches that share this module's set-up use it too)."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = conn.channel()
    channel.queue_delete(queue)
    channel.exchange_delete(exchange)
    conn.close()


def clean_up(amqp_url: str, exchange: str, queue: str, pg_url: str, pg_name: str) -> None:
    """Delete the run's queue, exchange and scratch database."""
    delete_queue(amqp_url, exchange, queue)
    drop_pg(pg_url, pg_name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--skip", default="", help="comma list of: raw,pg,sqlite,latency")
    ap.add_argument("--writer", default="thread", choices=["process", "thread", "store"],
                    help="convert+write in threads of this process (default), in a child process (process), "
                         "or convert here and write through a store process (store)")
    args = ap.parse_args()
    tune_for_intake()  # as `serve` and `worker catcher` do
    skip = set(filter(None, args.skip.split(",")))
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"bench-{tag}", f"stackwatch-bench-{tag}"
    bodies = [b for _, b in envelope_bodies(args.events)]
    mean = sum(map(len, bodies)) / len(bodies)
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"pika {pika.__version__}; writer {args.writer}; {len(bodies)} bodies, mean {mean:.0f} bytes")
    results: dict[str, object] = {}
    pg_name, pg_url = scratch_pg(args.pg)
    tmp = tempfile.mkdtemp(prefix="bench-amqp-")
    try:
        if "raw" not in skip:
            pub = publish_backlog(args.amqp, exchange, queue, bodies)
            results["raw_ceiling"] = raw_ceiling(args.amqp, queue, len(bodies))
            print(f"publish backlog: {len(bodies) / pub:,.0f} msg/s; raw ceiling: {results['raw_ceiling']:,.0f} msg/s")
        if "pg" not in skip:
            bodies = [b for _, b in envelope_bodies(args.events)]
            publish_backlog(args.amqp, exchange, queue, bodies)
            results["postgresql"] = drain(pg_url, args.amqp, exchange, queue, len(bodies), "bench-pg", args.writer)
            print(f"stackwatch -> PostgreSQL: {results['postgresql']}")
        if "sqlite" not in skip:
            bodies = [b for _, b in envelope_bodies(args.events)]
            publish_backlog(args.amqp, exchange, queue, bodies)
            results["sqlite"] = drain(f"sqlite:///{tmp}/bench.db", args.amqp, exchange, queue, len(bodies),
                                      "bench-sqlite", args.writer)
            print(f"stackwatch -> SQLite: {results['sqlite']}")
        if "latency" not in skip:
            results["latency_pg"] = latency(pg_url, args.amqp, exchange, queue, args.rate, args.seconds, "bench-lat",
                                           args.writer)
            print(f"latency at {args.rate} ev/s -> PostgreSQL: {results['latency_pg']}")
        raw = results.get("raw_ceiling")
        if raw:
            for key in ("postgresql", "sqlite"):
                if key in results:
                    print(f"ratio {key} / raw ceiling: {results[key]['rate'] / raw:.2f}")
    finally:
        clean_up(args.amqp, exchange, queue, args.pg, pg_name)
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
