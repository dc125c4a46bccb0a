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
   and migrations are reported apart) and stops at the last commit an outside connection sees (`max(id)` polled
   every 10 ms); the drain is complete when rows + collapsed counts = N, exactly (else the run fails);
3. latency (PostgreSQL, defaults): a publisher process sends at a steady rate; an outside connection reads
   new rows every 2 ms; publish-to-visible latency per stored message = when it was first read - when it was
   published; the row's `received_at` splits it into broker and intake time.
`--inprocess` adds the old in-process figures (monitor + runner + catcher in this process, store process).
CPU per message (bench/proc_cpu.py) names the catcher's process tree apart from the rest of the machine.
Uses its own exchange and queue (deleted afterwards) and scratch databases (dropped afterwards).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pika
import psycopg
import yaml

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


# -- the real process -------------------------------------------------------------------------------------
class CatcherProcess:
    """`stackwatch worker catcher --config F --provider P` as a user starts it, on this tree's sources."""

    def __init__(self, workdir: Path, database_url: str, amqp: dict[str, object], flood: dict | None) -> None:
        events: dict[str, object] = {"monitor": "amqp", "amqp": amqp}
        if flood is not None:
            events["flood"] = flood
        self.config = workdir / f"stackwatch-{uuid.uuid4().hex[:6]}.yaml"
        self.config.write_text(yaml.safe_dump({"data_dir": str(workdir), "database": database_url,
                                               "providers": [{"name": PROVIDER, "events": events}]}))
        self.log = self.config.with_suffix(".log")
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        script = Path(sys.executable).with_name("stackwatch")
        head = [str(script)] if script.exists() else [sys.executable, "-m", "stackwatch"]
        return [*head, "worker", "catcher", "--config", str(self.config), "--provider", PROVIDER]

    def start(self) -> CatcherProcess:
        path = [str(ROOT / "src"), os.environ.get("PYTHONPATH")]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, path)))
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(self.command(), env=env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"catcher exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def wait_for_consumer(amqp_url: str, queue: str, catcher: CatcherProcess, timeout: float = 60) -> float:
    """perf_counter time at which RabbitMQ first shows a consumer on `queue` (polled every 5 ms)."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    deadline = time.perf_counter() + timeout
    try:
        while time.perf_counter() < deadline:
            if ch.queue_declare(queue, passive=True).method.consumer_count:
                return time.perf_counter()
            catcher.check()
            time.sleep(0.005)
    finally:
        conn.close()
    raise RuntimeError(f"no consumer on {queue} after {timeout} s: {catcher.log.read_text()[-2000:]}")


class Outside:
    """A separate connection to the catcher's database, as `psql` or `sqlite3` would be."""

    def __init__(self, database_url: str) -> None:
        self.sqlite = database_url.startswith("sqlite:///")
        self.url = database_url
        self.conn: object = None

    def _connect(self) -> bool:
        if self.conn is not None:
            return True
        if self.sqlite:
            path = self.url.removeprefix("sqlite:///")
            if not Path(path).exists():
                return False
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        else:
            self.conn = psycopg.connect(self.url, autocommit=True)
        return True

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if not self._connect():
            return []
        try:
            return list(self.conn.execute(sql.replace("%s", "?") if self.sqlite else sql, params))
        except (sqlite3.OperationalError, psycopg.errors.UndefinedTable):
            return []  # not migrated yet

    def max_id(self) -> int:
        rows = self.query("SELECT max(id) FROM events")
        return (rows[0][0] or 0) if rows else 0

    def accounted(self) -> tuple[int, int, int]:
        """(rows, sum of collapsed counts, quarantined) of the provider."""
        rows = self.query("SELECT count(*), coalesce(sum(collapsed_count), 0) FROM events WHERE provider = %s",
                          (PROVIDER,))
        quarantined = self.query("SELECT count(*) FROM quarantine")
        return (rows[0][0], int(rows[0][1]), quarantined[0][0]) if rows and quarantined else (0, 0, 0)

    def backends(self) -> dict[int, str]:
        """PostgreSQL server processes of this database, labelled: the catcher's and this poller's own."""
        if self.sqlite or not self._connect():
            return {}
        own = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        pids = self.conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()").fetchall()
        return {pid: "bench poller's backend" if pid == own else "catcher's backends" for (pid,) in pids}

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def catcher_labels(catcher: CatcherProcess, outside: Outside) -> dict[int, str]:
    """pid -> label for the catcher's process tree and its database backends (other jobs keep their names)."""
    tree = {pid: "store process" for pid in proc_cpu.descendants(catcher.proc.pid)}
    return {**outside.backends(), catcher.proc.pid: "catcher", **tree}


def process_drain(database_url: str, amqp_url: str, exchange: str, queue: str, bodies: list[bytes],
                  flood: dict | None, workdir: Path) -> dict[str, object]:
    """Publish a backlog, start the real catcher, time it from its consumer's appearance to the last commit."""
    n = len(bodies)
    publish_backlog(amqp_url, exchange, queue, bodies)
    outside = Outside(database_url)
    catcher = CatcherProcess(workdir, database_url, amqp_section(exchange, queue, amqp_url), flood)
    spawned = time.perf_counter()
    catcher.start()
    try:
        consuming = wait_for_consumer(amqp_url, queue, catcher)
        cpu_before = proc_cpu.snapshot()
        last_id, last_change, first_seen = 0, consuming, None
        while True:
            now_id = outside.max_id()
            now = time.perf_counter()
            if now_id != last_id:
                last_id, last_change = now_id, now
                first_seen = first_seen or now
            elif now - last_change > 0.25:  # quiet: is everything accounted for?
                rows, collapsed, quarantined = outside.accounted()
                if rows + collapsed + quarantined >= n:
                    break
                if now - last_change > 60:
                    raise RuntimeError(f"drain stalled at {rows} rows + {collapsed} collapsed of {n}")
                last_change = now - 0.15  # look again in 0.1 s
            catcher.check()
            time.sleep(0.01)
        cpu = proc_cpu.spent(cpu_before, labels=catcher_labels(catcher, outside))
    finally:
        code = catcher.stop()
        outside.close()
    if code != 0:
        raise RuntimeError(f"catcher exited {code} after the drain: {catcher.log.read_text()[-2000:]}")
    if rows + collapsed != n or quarantined:
        raise RuntimeError(f"{rows} rows + {collapsed} collapsed + {quarantined} quarantined, published {n}")
    seconds = last_change - consuming
    return {"rate": n / seconds, "seconds": round(seconds, 3), "rows": rows, "collapsed": collapsed,
            "start_up_s": round(consuming - spawned, 2), "first_commit_after_s": round(first_seen - consuming, 3),
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


def _q(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=100)
    return round(q[49], 1), round(q[98], 1)


def process_latency(database_url: str, amqp_url: str, exchange: str, queue: str, rate: int, seconds: float,
                    flood: dict | None, workdir: Path) -> dict[str, object]:
    """Publish at a steady rate into the running catcher; read new rows from outside every 2 ms."""
    total = int(rate * seconds)
    outside = Outside(database_url)
    catcher = CatcherProcess(workdir, database_url, amqp_section(exchange, queue, amqp_url), flood).start()
    seen: dict[str, float] = {}
    try:
        wait_for_consumer(amqp_url, queue, catcher)
        warm_up = 20  # steady state: the first batch is stored (store processes up) before the clock starts
        publish_backlog(amqp_url, exchange, queue, [b for _, b in envelope_bodies(warm_up, prefix="warm-")], wait=False)
        while sum(outside.accounted()[:2]) < warm_up:
            catcher.check()
            time.sleep(0.05)
        total += warm_up
        out = str(workdir / "sent.json")
        proc = mp.get_context("spawn").Process(target=_steady_publisher, args=(amqp_url, exchange, rate, seconds, out))
        cpu_before = proc_cpu.snapshot()
        proc.start()
        after, deadline = 0, None
        while deadline is None or time.time() < deadline:
            rows = outside.query("SELECT id, message_id FROM events WHERE id > %s ORDER BY id", (after,))
            now = time.time()
            for row_id, message_id in rows:
                seen.setdefault(message_id, now)
                after = row_id
            if deadline is None and not proc.is_alive():
                deadline = time.time() + 60
            if deadline is not None and sum(outside.accounted()[:2]) >= total:
                break
            time.sleep(0.002)
        proc.join()
        cpu = proc_cpu.spent(cpu_before, labels=catcher_labels(catcher, outside))
        rows, collapsed, _ = outside.accounted()
        received = dict(outside.query("SELECT message_id, received_at FROM events"))
    finally:
        catcher.stop()
        outside.close()
    sent = dict(orjson.loads(Path(out).read_bytes()))
    lat, broker, intake = [], [], []
    for mid, visible in seen.items():
        if mid in sent:
            got = received[mid]
            got = (got if isinstance(got, float) else _epoch(got))
            lat.append((visible - sent[mid]) * 1000)
            broker.append((got - sent[mid]) * 1000)
            intake.append((visible - got) * 1000)
    return {"published": total - warm_up, "rows": rows - warm_up, "collapsed": collapsed, "measured": len(lat),
            "p50_p99_ms": _q(lat), "max_ms": round(max(lat), 1), "publish_to_received_p50_p99_ms": _q(broker),
            "received_to_visible_p50_p99_ms": _q(intake), "cpu": proc_cpu.per_message(cpu, total - warm_up)}


def _epoch(value: object) -> float:
    if isinstance(value, str):  # SQLite: naive UTC text
        value = datetime.fromisoformat(value)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


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
                run[key] = result = process_drain(fresh(store), args.amqp, exchange, queue, bodies, floods[mode],
                                                  workdir)
                ratio = f", ratio {result['rate'] / run['raw_ceiling']:.2f}" if "raw_ceiling" in run else ""
                print(f"  worker catcher -> {store}, flood {mode}: {result['rate']:,.0f} ev/s{ratio}; {result}",
                      flush=True)
                if args.inprocess:
                    import amqp_inprocess

                    run[key + "_inprocess"] = got = amqp_inprocess.drain(
                        fresh(store), args.amqp, exchange, queue, bodies, floods[mode])
                    print(f"  in-process -> {store}, flood {mode}: {got['rate']:,.0f} ev/s; {got}", flush=True)
            if "latency" not in skip:
                run["latency_pg"] = process_latency(fresh("pg"), args.amqp, exchange, queue, args.rate, args.seconds,
                                                    None, workdir)
                print(f"  latency at {args.rate} ev/s -> PostgreSQL, defaults: {run['latency_pg']}", flush=True)
            run["load_avg_1m_end"] = os.getloadavg()[0]
            runs.append(run)
    finally:
        delete_queue(args.amqp, exchange, queue)
        for name in scratch:
            drop_pg(args.pg, name)
    print(orjson.dumps(runs, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
