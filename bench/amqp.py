"""AMQP intake as users run it: the real `stackwatch worker catcher` process against the real RabbitMQ,
PostgreSQL and SQLite, counted from outside, beside the raw pika ceiling of the same run.

    .venv/bin/python -u bench/amqp.py [--events 100000] [--repeat 1] [--flood both|default|off]
        [--skip raw,pg,sqlite,latency] [--rate 2000] [--seconds 20] [--inprocess]

Bodies: oslo 2.0 envelopes of ~2.3 KB built from the real samples in tests/amqp/data (tests/amqp/corpus.py:
fresh message ids and instance ids; the legacy cinder/glance/neutron/heat/keystone samples keep their own
ids, so with flood control on a third of them collapse onto the first 50 of their key). Each repeat runs:
1. raw ceiling: a plain pika consumer, prefetch 1000, one `basic_ack(multiple=True)` per 1000 messages,
   draining a backlog of N (no parsing, no storing);
2. drains: a backlog of N published, then `stackwatch worker catcher --config F --provider P` started as a
   subprocess with the configuration a user writes (a database URL and an `events.amqp` section; flood
   control at its default, or `flood: {window_seconds: 0}` for comparison), into a fresh PostgreSQL database
   and a fresh SQLite file. The clock starts when RabbitMQ shows the process's consumer on the queue (start-up
   and migrations are reported apart) and stops at the last insert an outside connection sees (the id sequence
   on PostgreSQL, max(id) on SQLite, every 50 ms); the drain is complete when rows + collapsed counts = N,
   exactly (else the run fails);
3. latency (PostgreSQL, defaults): a publisher process sends at a steady rate; an outside connection reads
   new rows every 2 ms; publish-to-visible latency per stored message = when it was first read - when it was
   published; the row's `received_at` splits it into broker and intake time.
`--inprocess` adds the old in-process figures (monitor + runner + catcher in this process, store process).
CPU per message (bench/proc_cpu.py) names the catcher's process tree apart from the rest of the machine.
Uses its own exchange and queue (deleted afterwards) and scratch databases (dropped afterwards).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import pika
import pika.exceptions
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import proc_cpu  # noqa: E402

from stackwatch.config.settings import ProviderConfig  # noqa: E402
from tests.amqp.corpus import envelope_bodies  # noqa: E402

ROUTING_KEY = "notifications.info"
PROVIDER = "bench"
FLOOD_OFF = {"window_seconds": 0}


def amqp_section(exchange: str, queue: str, amqp_url: str) -> dict[str, object]:
    """The `events.amqp` section a user writes (SW_FLUSH_MS, SW_PREFETCH, SW_BATCH_SIZE override, for A/B)."""
    keys = {"SW_FLUSH_MS": ("flush_ms", float), "SW_PREFETCH": ("prefetch", int), "SW_BATCH_SIZE": ("batch_size", int)}
    extra = {key: cast(os.environ[env]) for env, (key, cast) in keys.items() if os.environ.get(env)}
    return {"urls": [amqp_url], "exchanges": [exchange], "topics": ["notifications"], "queue": queue, **extra}


def provider(name: str, exchange: str, queue: str, amqp_url: str, flood: dict | None = FLOOD_OFF) -> ProviderConfig:
    """For the in-process benches; `flood=None` leaves flood control at its default."""
    events: dict[str, object] = {"monitor": "amqp", "amqp": amqp_section(exchange, queue, amqp_url)}
    if flood is not None:
        events["flood"] = flood
    return ProviderConfig(name=name, events=events)


def declare(ch, exchange: str, queue: str) -> None:  # noqa: ANN001
    ch.exchange_declare(exchange, "topic", durable=False)
    ch.queue_declare(queue, durable=True)
    ch.queue_bind(queue, exchange, "notifications.*")


def publish_backlog(amqp_url: str, exchange: str, queue: str, bodies: list[bytes], wait: bool = True) -> float:
    """Publish `bodies`; with `wait`, until the queue holds them all (nothing consumes it meanwhile)."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    declare(ch, exchange, queue)
    props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
    started = time.perf_counter()
    for body in bodies:
        ch.basic_publish(exchange, ROUTING_KEY, body, props)
    while wait and ch.queue_declare(queue, passive=True).method.message_count < len(bodies):
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
    print(f"  raw consumer: {cpu / n * 1e6:.1f} us CPU, {elapsed / n * 1e6:.1f} us wall per message; "
          f"{proc_cpu.per_message(proc_cpu.spent(machine), n)}")
    return n / elapsed


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


# -- scratch databases and queues ---------------------------------------------------------------------------
def _pg_admin(pg_url: str) -> psycopg.Connection:
    """An autocommit connection for the bench's own statements (SQLAlchemy URLs accepted)."""
    return psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


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


def purge(amqp_url: str, exchange: str, queue: str) -> None:
    """Empty the run's queue (after a lost broker left part of a backlog), declaring it again if it is gone."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = conn.channel()
    declare(channel, exchange, queue)
    channel.queue_purge(queue)
    conn.close()


def clean_up(amqp_url: str, exchange: str, queue: str, pg_url: str, pg_name: str) -> None:
    """Delete the run's queue, exchange and scratch database."""
    delete_queue(amqp_url, exchange, queue)
    drop_pg(pg_url, pg_name)


def open_bench_store(store_url: str, writer: str):  # noqa: ANN201
    """For the in-process benches. writer `store`: the thread runner writing through store processes."""
    from stackwatch.store.db import open_store

    store = open_store(store_url, writer="process" if writer == "store" else "thread")
    if writer == "store":
        store.writer.start()
    return store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=1, help="interleaved repeats (the drain order alternates)")
    ap.add_argument("--flood", default="both", choices=["both", "default", "off"],
                    help="drains with flood control at its default, off (window_seconds: 0), or both")
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--skip", default="", help="comma list of: raw,pg,sqlite,latency")
    ap.add_argument("--inprocess", action="store_true", help="also drain in this process (the old bench)")
    args = ap.parse_args()
    import amqp_worker  # here: it imports this module's helpers as `amqp`

    skip = set(filter(None, args.skip.split(",")))
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"bench-{tag}", f"stackwatch-bench-{tag}"
    floods = {"default": None, "off": FLOOD_OFF}
    modes = [m for m in ("default", "off") if args.flood in ("both", m)]
    stores = [s for s in ("pg", "sqlite") if s not in skip]
    bodies = [b for _, b in envelope_bodies(args.events)]
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"pika {pika.__version__}; {len(bodies)} bodies, mean {sum(map(len, bodies)) / len(bodies):.0f} bytes")
    workdir = Path(tempfile.mkdtemp(prefix="bench-amqp-"))
    runs: list[dict[str, object]] = []
    scratch: list[str] = []
    try:
        for repeat in range(args.repeat):
            run: dict[str, object] = {"repeat": repeat + 1, "utc": time.strftime("%H:%M:%S", time.gmtime()),
                                      "load_avg_1m": os.getloadavg()[0]}
            print(f"repeat {repeat + 1}, {run['utc']} UTC, load average {os.getloadavg()}", flush=True)
            if "raw" not in skip:
                pub = publish_backlog(args.amqp, exchange, queue, bodies)
                run["raw_ceiling"] = raw_ceiling(args.amqp, queue, len(bodies))
                print(f"  publish backlog {len(bodies) / pub:,.0f} msg/s; raw ceiling {run['raw_ceiling']:,.0f} msg/s")
            order = [(s, m) for s in stores for m in modes]

            def fresh(store: str) -> str:
                if store == "sqlite":
                    return f"sqlite:///{workdir}/drain-{uuid.uuid4().hex[:6]}.db"
                name, url = scratch_pg(args.pg)
                scratch.append(name)
                return url

            for store, mode in order if repeat % 2 == 0 else order[::-1]:
                key = f"{store}_flood_{mode}"
                for attempt in (1, 2):  # a shared broker: another job's test may restart or reset it
                    try:
                        run[key] = result = amqp_worker.process_drain(fresh(store), args.amqp, exchange, queue,
                                                                      bodies, floods[mode], workdir)
                        break
                    except pika.exceptions.AMQPError as exc:
                        print(f"  broker lost during the drain ({exc!r}): {'once more' if attempt == 1 else 'stop'}")
                        if attempt == 2:
                            raise
                        purge(args.amqp, exchange, queue)
                ratio = f", ratio {result['rate'] / run['raw_ceiling']:.2f}" if "raw_ceiling" in run else ""
                print(f"  worker catcher -> {store}, flood {mode}: {result['rate']:,.0f} ev/s{ratio}; {result}",
                      flush=True)
                if args.inprocess:
                    import amqp_inprocess

                    run[key + "_inprocess"] = got = amqp_inprocess.drain(
                        fresh(store), args.amqp, exchange, queue, bodies, floods[mode])
                    print(f"  in-process -> {store}, flood {mode}: {got['rate']:,.0f} ev/s; {got}", flush=True)
            if "latency" not in skip:
                run["latency_pg"] = amqp_worker.process_latency(fresh("pg"), args.amqp, exchange, queue, args.rate,
                                                                args.seconds, None, workdir)
                print(f"  latency at {args.rate} ev/s -> PostgreSQL, defaults: {run['latency_pg']}", flush=True)
            run["load_avg_1m_end"] = os.getloadavg()[0]
            runs.append(run)
    finally:
        for name in scratch:
            drop_pg(args.pg, name)
        delete_queue(args.amqp, exchange, queue)
    print(orjson.dumps(runs, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
