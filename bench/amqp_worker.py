"""The real `stackwatch worker catcher` process, driven and counted from outside (bench/amqp.py's drains
and latency phase): a configuration file as a user writes it, the process started as a user starts it, the
stored events read back through a separate connection to the database, as `psql` or `sqlite3` would.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import amqp as bench
import orjson
import pika
import proc_cpu
import psycopg
import yaml
from amqp import PROVIDER, ROOT, amqp_section, publish_backlog

from tests.amqp.corpus import envelope_bodies


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
            # `id > N` by the primary key even before the table has statistics (planned as for a tiny table)
            self.conn.execute("SET enable_seqscan = off")
        return True

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        if not self._connect():
            return []
        try:
            return list(self.conn.execute(sql.replace("%s", "?") if self.sqlite else sql, params))
        except (sqlite3.OperationalError, psycopg.errors.UndefinedTable):  # (the sequence too)
            return []  # not migrated yet

    def max_id(self) -> int:
        """The newest id: SQLite's max(rowid) is a lookup; PostgreSQL's id sequence is read instead of
        max(id), whose plan before the table has statistics read the whole table (32-72 us of server CPU an
        event at 10 ms polls). The sequence moves when rows are inserted, a commit's few ms before they are
        visible; the drain's end is taken from it, its completeness from `accounted`."""
        if self.sqlite:
            rows = self.query("SELECT max(id) FROM events")
        else:
            rows = self.query("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_id_seq")
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
        last_id, last_change, first_seen, looked = 0, consuming, None, 0.0
        broker = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = broker.channel()
        while True:
            now_id = outside.max_id()
            now = time.perf_counter()
            if now_id != last_id:
                last_id, last_change = now_id, now
                first_seen = first_seen or now
            elif now - last_change > 0.25 and now - looked > 0.25:  # quiet: is everything accounted for?
                looked = now  # (counting is a scan: only when nothing is left on the queue, every 0.25 s)
                if not channel.queue_declare(queue, passive=True).method.message_count:
                    rows, collapsed, quarantined = outside.accounted()
                    if rows + collapsed + quarantined >= n:
                        break
                if now - last_change > 120:
                    raise RuntimeError(f"drain stalled at max(id) {last_id} of {n} published")
            catcher.check()
            time.sleep(0.05)  # each read costs the server ~10 ms of CPU during a drain (bench/RESULTS.md)
        broker.close()
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
        proc = mp.get_context("spawn").Process(target=bench._steady_publisher,
                                               args=(amqp_url, exchange, rate, seconds, out))
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
