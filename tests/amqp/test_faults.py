"""Fault tests: the catcher process killed, the broker restarted, the database gone, garbage on the bus.

Each is bounded in time; sizes can be raised through the environment for longer soak runs:
STACKWATCH_TEST_KILL_N (default 50000), STACKWATCH_TEST_DB_OUTAGE (seconds, default 30).
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import yaml

from stackwatch.events.catcher import Catcher
from stackwatch.events.monitors.amqp import AmqpMonitor
from stackwatch.events.process_runner import ProcessCatcherRunner
from stackwatch.events.runner import CatcherRunner
from stackwatch.store.db import open_store
from tests.amqp.conftest import AMQP_URL, PG_ADMIN_URL, provider_config, wait_for
from tests.amqp.corpus import envelope, envelope_bodies, notification, pick

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres, pytest.mark.slow]

KILL_N = int(os.environ.get("STACKWATCH_TEST_KILL_N", "50000"))
DB_OUTAGE = float(os.environ.get("STACKWATCH_TEST_DB_OUTAGE", "30"))
RABBIT_NODE = os.environ.get("STACKWATCH_TEST_RABBIT_NODE", "rabbit@localhost")


def _pg_ids(url: str, provider: str) -> tuple[int, int]:
    """(rows, distinct message ids) stored for `provider`, read straight from PostgreSQL."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT message_id) FROM events WHERE provider = %s", (provider,)
        ).fetchone()
    return int(row[0]), int(row[1])


def _pg_count(url: str, provider: str) -> int:
    try:
        return _pg_ids(url, provider)[0]
    except psycopg.Error:
        return -1  # tables not migrated yet


def _catcher_cmd(config: Path, provider: str) -> list[str]:
    """`stackwatch worker catcher ...`: the installed console script next to this interpreter, if any."""
    script = Path(sys.executable).with_name("stackwatch")
    base = [str(script)] if script.exists() else [sys.executable, "-c", "from stackwatch.cli.main import app; app()"]
    return [*base, "worker", "catcher", "--config", str(config), "--provider", provider, "--log-level", "warning",
            "--stats-every", "0"]


def _declare(prov) -> None:  # noqa: ANN001
    """Declare the monitor's topology once so messages published before it starts are kept."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        AmqpMonitor(prov)._declare(conn)
    finally:
        conn.close()


# -- (a) the catcher process SIGKILLed at a random moment ------------------------------------------------
def test_sigkill_catcher_process_mid_stream_stores_each_exactly_once(broker, tag, pg_url, make_provider, tmp_path):
    prov = make_provider(("nova", "neutron"))
    exchanges = prov.events.amqp["exchanges"]
    config = tmp_path / "stackwatch.yaml"
    config.write_text(yaml.safe_dump({
        "database": pg_url,
        "providers": [provider_config(prov.name, exchanges, prov.events.amqp["queue"])],
    }))
    _declare(prov)
    bodies = envelope_bodies(KILL_N)
    rng = random.Random()
    kill_at = rng.randint(KILL_N // 10, KILL_N * 7 // 10)
    log = open(tmp_path / "catcher.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(_catcher_cmd(config, prov.name), stdout=log, stderr=log)
    publisher = threading.Thread(
        target=lambda: [broker.publish(exchanges[i % 2], "notifications.info",
                                       [b for _, b in bodies[i::2]], confirm=False) for i in range(2)],
    )
    started = time.monotonic()
    killed_at_count = None
    try:
        publisher.start()
        # a random moment: when the store holds `kill_at` events (the stream is flowing both ways then)
        wait_for(lambda: _pg_count(pg_url, prov.name) >= kill_at, 120, interval=0.01, what=f"{kill_at} stored")
        time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at_count = _pg_count(pg_url, prov.name)
        proc = subprocess.Popen(_catcher_cmd(config, prov.name), stdout=log, stderr=log)
        publisher.join(120)
        wait_for(lambda: _pg_count(pg_url, prov.name) >= KILL_N, 150, interval=0.2, what=f"{KILL_N} stored")
        wait_for(lambda: broker.queue_counts(prov.events.amqp["queue"]) == (0, 0), 30, interval=0.5,
                 what="queue empty and nothing unacknowledged")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    elapsed = time.monotonic() - started
    assert 0 < killed_at_count < KILL_N, killed_at_count
    rows, distinct = _pg_ids(pg_url, prov.name)
    assert (rows, distinct) == (KILL_N, KILL_N)
    with psycopg.connect(pg_url) as conn:
        stored = {r[0] for r in conn.execute("SELECT message_id FROM events WHERE provider = %s", (prov.name,))}
    assert stored == {mid for mid, _ in bodies}
    print(f"\nSIGKILL test: {KILL_N} published, killed at {killed_at_count} stored, all stored once in "
          f"{elapsed:.1f}s")


# -- (b) RabbitMQ's app restarted mid-stream ---------------------------------------------------------------
def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", "-n", RABBIT_NODE, *args], check=True, timeout=120,
                   capture_output=True)


def _node_serves_our_port() -> bool:
    out = subprocess.run(["rabbitmq-diagnostics", "-q", "-n", RABBIT_NODE, "listeners"], capture_output=True,
                         text=True, timeout=60).stdout
    port = AMQP_URL.rsplit(":", 1)[1].split("/")[0]
    return f"port: {port}," in out


def test_rabbitmq_restart_mid_stream_loses_nothing_and_resumes_quickly(broker, pg_url, make_provider):
    if not _node_serves_our_port():
        pytest.skip(f"node {RABBIT_NODE} does not serve {AMQP_URL}; not restarting anything")
    prov = make_provider(("nova",), reconnect_max=3.0)  # the default back-off cap
    exchange = prov.events.amqp["exchanges"][0]
    _declare(prov)
    first = envelope_bodies(30_000)
    broker.publish(exchange, "notifications.info", [b for _, b in first], confirm=False)
    wait_for(lambda: broker.ready(prov.events.amqp["queue"]) == len(first), 60, what="backlog queued")

    store = open_store(pg_url)
    monitor = AmqpMonitor(prov)
    runner = CatcherRunner(monitor, Catcher(store, prov)).start()
    try:
        wait_for(lambda: store.count(prov.name) >= 3000, 60, interval=0.01, what="3000 stored")
        _rabbitmqctl("stop_app")
        stopped_at = store.count(prov.name)
        time.sleep(2)
        _rabbitmqctl("start_app")
        restarted = time.monotonic()
        wait_for(monitor.connected.is_set, 15, interval=0.01, what="reconnected")
        reconnect_s = time.monotonic() - restarted
        wait_for(lambda: store.count(prov.name) > stopped_at, 15, interval=0.01, what="storing again")
        resume_s = time.monotonic() - restarted
        # after the restart the (non-durable, oslo-style) exchange and its bindings exist again
        second = envelope_bodies(1000)
        broker.publish(exchange, "notifications.info", [b for _, b in second])
        total = len(first) + len(second)
        wait_for(lambda: store.count(prov.name) >= total, 120, interval=0.1, what=f"{total} stored")
        time.sleep(1)
        assert store.count(prov.name) == total
    finally:
        runner.stop()
        store.dispose()
        subprocess.run(["rabbitmqctl", "-q", "-n", RABBIT_NODE, "start_app"], timeout=120, capture_output=True)
    rows, distinct = _pg_ids(pg_url, prov.name)
    assert rows == distinct == total
    assert stopped_at < len(first), "the restart must happen mid-stream"
    assert monitor.stats()["connects"] >= 2
    assert monitor.stats()["fast_deliveries"] >= total  # counted over both connections, not since the last
    assert resume_s <= 5.0, f"consuming again after {resume_s:.2f}s"
    print(f"\nbroker restart: stopped at {stopped_at} stored; reconnected {reconnect_s:.2f}s and storing "
          f"{resume_s:.2f}s after start_app; {total} stored once")


# -- (c) the database unreachable ------------------------------------------------------------------------
class TcpProxy:
    """127.0.0.1:<port> -> target; `cut()` drops every connection and refuses new ones, `restore()` undoes."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = self._free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self.restore()

    @staticmethod
    def _free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    def restore(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 0.5)
                for src in readable:
                    data = src.recv(65536)
                    if not data:
                        raise OSError("closed")
                    (b if src is a else a).sendall(data)
        except (OSError, ValueError):
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone would leave the socket listening
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def close(self) -> None:
        self.cut()


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_database_unreachable_nothing_acked_nothing_lost(writer, broker, pg_url, make_provider):
    prov = make_provider(("nova",))
    exchange, queue = prov.events.amqp["exchanges"][0], prov.events.amqp["queue"]
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxied = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    assert proxied != pg_url
    store = open_store(proxied)
    monitor = AmqpMonitor(prov)
    if writer == "process":
        runner = ProcessCatcherRunner(monitor, proxied).start()
    else:
        runner = CatcherRunner(monitor, Catcher(store, prov), retry_max=2.0).start()
    try:
        assert monitor.connected.wait(15)
        before = envelope_bodies(2000)
        broker.publish(exchange, "notifications.info", [b for _, b in before])
        wait_for(lambda: _pg_count(pg_url, prov.name) == 2000, 30, what="2000 stored before the outage")
        wait_for(lambda: monitor.stats()["acked"] == 2000, 10, what="2000 acknowledged")

        proxy.cut()
        during = envelope_bodies(5000)
        broker.publish(exchange, "notifications.info", [b for _, b in during])
        outage_end = time.monotonic() + DB_OUTAGE
        samples = []
        while time.monotonic() < outage_end:
            time.sleep(min(5.0, max(0.0, outage_end - time.monotonic())))
            ready, unacked = broker.queue_counts(queue)
            samples.append((ready, unacked, monitor.stats()["acked"]))
        if writer == "thread":  # the process writer retries in its child
            assert runner.stats.store_failures >= 2, vars(runner.stats)
        for ready, unacked, acked in samples:
            assert acked == 2000, "nothing may be acknowledged while the database is down"
            assert ready + unacked == len(during), "the broker keeps every message"
            assert unacked <= monitor.prefetch, "back-pressure: no more than prefetch in our hands"
        assert _pg_count(pg_url, prov.name) == 2000

        proxy.restore()
        total = len(before) + len(during)
        wait_for(lambda: _pg_count(pg_url, prov.name) >= total, 60, interval=0.2, what=f"{total} stored")
        wait_for(lambda: broker.queue_counts(queue) == (0, 0), 30, interval=0.5, what="queue drained")
    finally:
        runner.stop()
        store.dispose()
        proxy.close()
    assert _pg_ids(pg_url, prov.name) == (total, total)
    print(f"\ndatabase outage {DB_OUTAGE:.0f}s ({writer} writer): nothing acknowledged, {total} stored once after")


# -- (d) malformed bodies on the bus -----------------------------------------------------------------------
def test_malformed_bodies_are_quarantined_and_the_stream_goes_on(broker, pg_url, make_provider):
    prov = make_provider(("nova",))
    exchange = prov.events.amqp["exchanges"][0]
    no_type = notification(pick(1), 1)
    del no_type["event_type"]
    bad = [
        b"not json at all",
        b"\xff\xfe\x00 not utf-8",
        b"[1, 2, 3]",
        b"42",
        b"",
        b'{"oslo.version": "2.0", "oslo.message": "{truncated"}',
        envelope(no_type),
        b'{"event_type": 7, "payload": {}}',
        b'{"event_type": "compute.instance.create.end", "timestamp": "yesterday-ish", "payload": {}}',
        b"[" * 200_000 + b"]" * 200_000,
        b'{"event_type": "x.y", "payload": "' + b"a" * (2 * 1024 * 1024) + b'"}',
    ]
    good = envelope_bodies(300)
    stream: list[bytes] = []
    for i, (_, body) in enumerate(good):
        stream.append(body)
        if i % 25 == 0 and i // 25 < len(bad):
            stream.append(bad[i // 25])
    assert sum(1 for b in stream if b in bad) == len(bad)

    store = open_store(pg_url)
    monitor = AmqpMonitor(prov)
    runner = CatcherRunner(monitor, Catcher(store, prov)).start()
    try:
        assert monitor.connected.wait(15)
        broker.publish(exchange, "notifications.info", stream)
        wait_for(lambda: store.count(prov.name) + store.quarantine_count(prov.name) >= len(stream), 60,
                 what="every message stored or quarantined")
        later = envelope_bodies(50)  # the stream goes on after the garbage
        broker.publish(exchange, "notifications.error", [b for _, b in later])
        wait_for(lambda: store.count(prov.name) >= len(good) + len(later), 30, what="later messages stored")
        wait_for(lambda: monitor.stats()["acked"] == len(stream) + len(later), 10, what="all acknowledged")
        assert broker.ready(prov.events.amqp["queue"]) == 0
        # every bad body is quarantined, "timestamp": "yesterday-ish" too (unparseable timestamp), none stored
        assert store.count(prov.name) == len(good) + len(later)
        assert store.quarantine_count(prov.name) == len(bad)
        for mid, _ in good + later:
            assert store.get(mid, prov.name) is not None
        reasons = [q.reason for q in store.quarantined(prov.name, limit=100)]
        assert any("max_event_bytes" in r for r in reasons)
        assert "unparseable timestamp 'yesterday-ish'" in reasons
        assert all(r for r in reasons)
    finally:
        runner.stop()
        store.dispose()


# -- (e) zero loss with the default configuration: flood control on, `worker catcher` as users run it ------
# Every published event must end stored, or counted in the collapsed_count of a stored row, exactly once;
# nothing good in the quarantine; nothing acknowledged while the store cannot be written (issue 12, section 1).
# Published with oslo.messaging's own Notifier; the catcher is the real `stackwatch worker catcher` process
# (store writes in its store process, flood control at its defaults).
FLOOD_N = int(os.environ.get("STACKWATCH_TEST_FLOOD_N", "10000"))


def _default_provider(prov) -> dict:  # noqa: ANN001
    """The provider as a user writes it: monitor and broker only, everything else (flood control) default."""
    amqp = prov.events.amqp
    return {"name": prov.name, "events": {"monitor": "amqp", "amqp": {
        "urls": amqp["urls"], "exchanges": amqp["exchanges"], "queue": amqp["queue"]}}}


class OsloPublisher:
    """oslo.messaging Notifiers on `exchange` (several, in threads: one publishes ~300 notifications/s)."""

    def __init__(self, exchange: str, threads: int = 4) -> None:
        from tests.amqp.test_oslo_notifier import _existing_queues, _notifier

        self.queues_before = _existing_queues()
        self.pairs = [_notifier(exchange, "messagingv2", "notifications", "compute.host1") for _ in range(threads)]
        self.published = 0

    def publish(self, events: list[tuple[str, int]]) -> None:
        """(instance_id, seq) each as one compute.instance.update notification."""
        from tests.amqp.test_oslo_notifier import _context

        def send(part: list[tuple[str, int]], notifier) -> None:  # noqa: ANN001
            context = _context()
            for vm, seq in part:
                notifier.info(context, "compute.instance.update", {"instance_id": vm, "seq": seq, "state": "active"})

        threads = [threading.Thread(target=send, args=(events[i :: len(self.pairs)], notifier))
                   for i, (_, notifier) in enumerate(self.pairs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.published += len(events)

    def close(self, broker) -> None:  # noqa: ANN001
        from tests.amqp.test_oslo_notifier import _existing_queues

        for transport, _ in self.pairs:
            transport.cleanup()
        broker.queues.update(_existing_queues() - self.queues_before)


def _events(count: int, start: int, vm: str | None = None) -> list[tuple[str, int]]:
    """`count` notifications numbered from `start`: all of one VM (a flood key) or each of its own VM."""
    return [(vm or f"vm-{start + i}", start + i) for i in range(count)]


def _start_catcher(config: Path, provider: str, log) -> subprocess.Popen:  # noqa: ANN001
    return subprocess.Popen(_catcher_cmd(config, provider), stdout=log, stderr=log)


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _assert_all_accounted(url: str, provider: str, published: int) -> dict:
    from tests.integration.test_zero_loss_flood import account

    held = account(url, provider)
    assert held["rows"] == held["distinct"], held
    assert held["quarantined"] == 0, held  # nothing good in the quarantine
    assert held["rows"] + held["collapsed"] == published, held
    return held


def _wait_accounted(url: str, provider: str, published: int, timeout: float) -> None:
    from tests.integration.test_zero_loss_flood import account

    def done() -> bool:
        try:
            held = account(url, provider)
        except Exception:  # noqa: BLE001 - the store may be down or not migrated yet
            return False
        return held["rows"] + held["collapsed"] + held["quarantined"] >= published

    wait_for(done, timeout, interval=0.5, what=f"{published} events accounted for")


def _sample_outage(broker, queue: str, published_during: int, seconds: float) -> list[tuple[int, int]]:  # noqa: ANN001
    """Broker counts every 5 s while the store is down: nothing may leave the queue unacknowledged."""
    end = time.monotonic() + seconds
    samples = []
    while time.monotonic() < end:
        time.sleep(min(5.0, max(0.0, end - time.monotonic())))
        samples.append(broker.queue_counts(queue))
    for ready, unacked in samples:
        assert ready + unacked == published_during, (samples, "nothing may be acknowledged while the store is down")
    return samples


def test_sqlite_write_lock_held_by_another_process_loses_nothing(broker, make_provider, tmp_path):
    """Another process holds SQLite's write lock longer than the store's busy timeout (30 s): the writer's
    `database is locked` is back-pressure, retried; with a flood of one key during the lock."""
    prov = make_provider(("nova",))
    queue = prov.events.amqp["queue"]
    db = tmp_path / "stackwatch.db"
    url = f"sqlite:///{db}"
    config = tmp_path / "stackwatch.yaml"
    config.write_text(yaml.safe_dump({"database": url, "providers": [_default_provider(prov)]}))
    _declare(prov)
    publisher = OsloPublisher(prov.events.amqp["exchanges"][0])
    log = open(tmp_path / "catcher.log", "ab")  # noqa: SIM115
    proc = _start_catcher(config, prov.name, log)
    holder = None
    try:
        publisher.publish(_events(300, 0))
        _wait_accounted(url, prov.name, 300, 60)
        hold = DB_OUTAGE + 10  # past the busy timeout (30 s), so the lock error itself reaches the writer
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sqlite3, sys, time\n"
             f"c = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
             "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True)\n"
             f"time.sleep({hold}); c.rollback()"],
            stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "locked"
        locked_at = time.monotonic()
        during = _events(FLOOD_N // 4, 300, vm="vm-flood") + _events(500, 300 + FLOOD_N // 4)
        publisher.publish(during)
        _sample_outage(broker, queue, len(during), hold - (time.monotonic() - locked_at) - 2)
        holder.wait(30)
        _wait_accounted(url, prov.name, publisher.published, 120)
        wait_for(lambda: broker.queue_counts(queue) == (0, 0), 30, interval=0.5, what="queue drained")
    finally:
        _stop(proc)
        if holder is not None and holder.poll() is None:
            holder.kill()
        log.close()
        publisher.close(broker)
    held = _assert_all_accounted(url, prov.name, publisher.published)
    assert held["collapsed"] > 0, held  # flood control was on, and collapsed the flood
    assert "locked" in (tmp_path / "catcher.log").read_text(), "the lock error reached the writer"
    print(f"\nSQLite locked {hold:.0f}s: {publisher.published} published = {held['rows']} rows + "
          f"{held['collapsed']} collapsed; 0 quarantined")


def test_pg_terminate_backend_mid_copy_loses_nothing(broker, pg_url, make_provider, tmp_path):
    """The writers' PostgreSQL backends are terminated whenever they COPY, for 8 s: the same batch fails
    again and again (a refusal it is not: no split, no quarantine), then everything is stored."""
    prov = make_provider(("nova",))
    queue = prov.events.amqp["queue"]
    config = tmp_path / "stackwatch.yaml"
    config.write_text(yaml.safe_dump({"database": pg_url, "providers": [_default_provider(prov)]}))
    _declare(prov)
    publisher = OsloPublisher(prov.events.amqp["exchanges"][0])
    dbname = pg_url.rsplit("/", 1)[1]
    log = open(tmp_path / "catcher.log", "ab")  # noqa: SIM115
    proc = None
    kills = 0
    try:
        # a backlog (full batches, so COPY) of distinct events and a flood of one key
        publisher.publish(_events(6000, 0) + _events(FLOOD_N // 2, 6000, vm="vm-flood"))
        proc = _start_catcher(config, prov.name, log)
        admin_url = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin_url, autocommit=True) as admin:
            deadline = time.monotonic() + 60  # the first COPY (the catcher starting up), then 8 s of kills
            while time.monotonic() < deadline:
                row = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                    "AND query LIKE 'COPY event_records_stage%%' LIMIT 1", (dbname,)).fetchone()
                if row and admin.execute("SELECT pg_terminate_backend(%s)", (row[0],)).fetchone()[0]:
                    if not kills:
                        deadline = time.monotonic() + 8
                    kills += 1
                else:
                    time.sleep(0.002)
        _wait_accounted(pg_url, prov.name, publisher.published, 120)
        wait_for(lambda: broker.queue_counts(queue) == (0, 0), 30, interval=0.5, what="queue drained")
    finally:
        if proc is not None:
            _stop(proc)
        log.close()
        publisher.close(broker)
    assert kills >= 3, "the writers were not caught in a COPY often enough"
    held = _assert_all_accounted(pg_url, prov.name, publisher.published)
    assert held["collapsed"] > 0, held
    print(f"\npg_terminate_backend x{kills} mid-COPY: {publisher.published} published = {held['rows']} rows + "
          f"{held['collapsed']} collapsed; 0 quarantined")


class PrivatePostgres:
    """A PostgreSQL server of this test's own (initdb + pg_ctl from /usr/lib/postgresql), on a free port:
    stopping it affects nobody else on the machine."""

    def __init__(self) -> None:
        import glob
        import tempfile

        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bin = Path(bins[-1]).parent
        self.dir = Path(tempfile.mkdtemp(prefix="sw-private-pg-"))
        self.port = TcpProxy._free_port()
        self.user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.user:
            subprocess.run(["chown", "postgres", str(self.dir)], check=True)
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.user, str(self.bin / tool), *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def close(self) -> None:
        import shutil

        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


def test_postgresql_stopped_with_a_flood_during_the_outage_loses_nothing(broker, make_provider, tmp_path):
    """The server stops (fast shutdown: AdminShutdown to every backend) for 30 s; meanwhile a flood of
    identical-key events and others arrive. Nothing is acknowledged during the outage; after it, every
    event is stored or counted on a stored row."""
    prov = make_provider(("nova",))
    queue = prov.events.amqp["queue"]
    server = PrivatePostgres()
    config = tmp_path / "stackwatch.yaml"
    config.write_text(yaml.safe_dump({"database": server.url, "providers": [_default_provider(prov)]}))
    _declare(prov)
    publisher = OsloPublisher(prov.events.amqp["exchanges"][0])
    log = open(tmp_path / "catcher.log", "ab")  # noqa: SIM115
    proc = _start_catcher(config, prov.name, log)
    try:
        publisher.publish(_events(1000, 0) + _events(200, 1000, vm="vm-flood"))
        _wait_accounted(server.url, prov.name, 1200, 60)
        server.stop()
        stopped_at = time.monotonic()
        during = _events(FLOOD_N, 1200, vm="vm-flood") + _events(1000, 1200 + FLOOD_N)
        publisher.publish(during)
        _sample_outage(broker, queue, len(during), DB_OUTAGE - (time.monotonic() - stopped_at))
        server.start()
        _wait_accounted(server.url, prov.name, publisher.published, 180)
        wait_for(lambda: broker.queue_counts(queue) == (0, 0), 30, interval=0.5, what="queue drained")
        held = _assert_all_accounted(server.url, prov.name, publisher.published)
    finally:
        _stop(proc)
        log.close()
        publisher.close(broker)
        server.close()
    assert held["collapsed"] >= FLOOD_N - 200, held  # the flood was collapsed, not stored row by row
    print(f"\nPostgreSQL stopped {DB_OUTAGE:.0f}s, {FLOOD_N} identical-key events during it: "
          f"{publisher.published} published = {held['rows']} rows + {held['collapsed']} collapsed; 0 quarantined")
