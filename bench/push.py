"""Push as users run it: publish (oslo Notifier) -> subscriber latency through `stackwatch serve`.

    .venv/bin/python -u bench/push.py [--rate 1000] [--seconds 10] [--subscriptions 100] [--websockets 10]
        [--database postgresql|sqlite]

1. a configuration a user writes (a database, one provider with an `events.amqp` section on the local RabbitMQ,
   its own exchange and queue, deleted afterwards) and `stackwatch serve --config F` started as a subprocess with
   default settings (catcher, handler stage with the push handler and its dispatcher, the API);
2. N webhook subscriptions created through `POST /api/v1/subscriptions` (all on one project), all pointing at one
   threaded HTTP receiver in this process (a path per subscription), and W WebSocket clients on
   `/api/v1/stream?events=compute.instance.*`;
3. oslo.messaging's real Notifier publishes nova-style events of that project at `--rate` per second for
   `--seconds`, each payload carrying its publish time; latency = receive time (webhook request read / WebSocket
   message read) - publish time, same clock. The run waits for every expected delivery (or gives up after 300 s
   and reports what arrived).

4. the reference, in the same run: Zaqar 23 (stackwatch.devcloud.zaqar, Redis, no auth) at the same rate, one
   webhook subscriber on a queue, post -> webhook latency (`--zaqar-events 0` skips it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import psycopg
import yaml

ROOT = Path(__file__).resolve().parents[1]
# bench/amqp.py would shadow the `amqp` package oslo.messaging's rabbit driver imports
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
AMQP_URL = os.environ.get("STACKWATCH_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
PG = os.environ.get("STACKWATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PROJECT = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(name: str, lat: list[float], expected: int) -> str:
    ms = [v * 1000 for v in lat]
    return (f"{name:10s} {len(lat):7d}/{expected:<7d} p50 {pct(ms, 50):8.1f} ms  p99 {pct(ms, 99):8.1f} ms  "
            f"max {max(ms, default=float('nan')):8.1f} ms")


class Sink:
    """Webhook receiver: records the latency of each delivery from the publish time its body carries."""

    def __init__(self, sent_at=lambda doc: doc["payload"]["sent_at"]) -> None:  # noqa: ANN001
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                sent = sent_at(orjson.loads(body))
                with sink.lock:
                    sink.latencies.append(now - sent)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


async def websocket_client(url: str, out: list[float], stop: threading.Event) -> None:
    import websockets

    async with websockets.connect(url, max_queue=None) as ws:
        while not stop.is_set():
            try:
                message = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            now = time.time()
            event = orjson.loads(message)["event"]
            if event is not None:
                out.append(now - event["payload"]["sent_at"])


def zaqar_reference(work: Path, rate: float, count: int) -> list[float]:
    """Zaqar's own post -> webhook latency at the same rate (no auth: Zaqar alone, as its recipe measures it)."""
    sys.path.insert(0, str(ROOT / "src"))
    from stackwatch.devcloud import zaqar

    server = zaqar.start(None, None, work / "zaqar")
    sink = Sink(lambda doc: doc["body"]["sent_at"])
    headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": PROJECT}
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
            client.post("/v2/queues/bench/subscriptions", json={"subscriber": sink.url + "/z", "ttl": 3600})
            start = time.monotonic()
            for i in range(count):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                client.post("/v2/queues/bench/messages", json={"messages": [{"ttl": 300, "body": {
                    "seq": i, "sent_at": time.time()}}]})
        give_up = time.monotonic() + 60
        while len(sink.latencies) < count and time.monotonic() < give_up:
            time.sleep(0.2)
    finally:
        server.stop()
    return sink.latencies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--subscriptions", type=int, default=100)
    ap.add_argument("--websockets", type=int, default=10)
    ap.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument("--zaqar-events", type=int, default=500, help="Zaqar reference posts (0: skip)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import oslo_messaging
    from oslo_config import cfg
    from oslo_context.context import RequestContext

    tag = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="pushbench-"))
    dbname = f"pushbench_{tag}"
    if args.database == "postgresql":
        with psycopg.connect(PG, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{dbname}"')
        database = PG.rsplit("/", 1)[0] + f"/{dbname}"
    else:
        database = f"sqlite:///{work / 'stackwatch.db'}"
    port = free_port()
    exchange, queue = f"pushbench-{tag}-nova", f"pushbench-{tag}"
    config = work / "stackwatch.yaml"
    config.write_text(yaml.safe_dump({"database": database, "api": {"port": port}, "providers": [{
        "name": "bench", "events": {"monitor": "amqp", "amqp": {"urls": [AMQP_URL], "exchanges": [exchange],
                                                                 "queue": queue}}}]}))
    env = {**os.environ, "STACKWATCH_LOG_LEVEL": "warning"}
    with open(work / "serve.log", "wb") as log:
        serve = subprocess.Popen([sys.executable, "-m", "stackwatch", "serve", "--config", str(config)], env=env,
                                 stdout=log, stderr=subprocess.STDOUT)
    sink = Sink()
    stop = threading.Event()
    ws_lat: list[float] = []
    api = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{api}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or serve.poll() is not None:
                raise SystemExit(f"serve did not start; see {work / 'serve.log'}")
            time.sleep(0.2)
        for i in range(args.subscriptions):
            r = httpx.post(f"{api}/api/v1/subscriptions", json={
                "name": f"bench-{i:03d}", "provider": "bench", "project_id": PROJECT,
                "events": ["compute.instance.*"], "to": f"{sink.url}/bench-{i:03d}"}, timeout=10)
            r.raise_for_status()
        ws_url = f"ws://127.0.0.1:{port}/api/v1/stream?events=compute.instance.*"

        async def all_clients() -> None:
            await asyncio.gather(*(websocket_client(ws_url, ws_lat, stop) for _ in range(args.websockets)))

        threading.Thread(target=asyncio.run, args=(all_clients(),), daemon=True).start()
        time.sleep(4)  # the push handler re-reads subscriptions every 2 s; clients connected
        conf = cfg.ConfigOpts()
        conf([], project="pushbench", default_config_files=[], default_config_dirs=[])
        oslo_messaging.set_transport_defaults(control_exchange=f"pushbench-{tag}-nova")
        transport = oslo_messaging.get_notification_transport(conf, url=AMQP_URL.replace("amqp://", "rabbit://", 1))
        notifier = oslo_messaging.Notifier(transport, publisher_id="compute.bench", driver="messagingv2",
                                           topics=["notifications"])
        ctx = RequestContext(project_id=PROJECT, user_id="bench")
        total = int(args.rate * args.seconds)
        start = time.monotonic()
        for i in range(total):
            due = start + i / args.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            notifier.info(ctx, "compute.instance.update", {
                "instance_id": f"00000000-0000-4000-8000-{i % 500:012d}", "tenant_id": PROJECT, "seq": i,
                "sent_at": time.time()})
        published_in = time.monotonic() - start
        expected_hooks = total * args.subscriptions
        expected_ws = total * args.websockets
        give_up = time.monotonic() + 300
        while (len(sink.latencies) < expected_hooks or len(ws_lat) < expected_ws) and time.monotonic() < give_up:
            time.sleep(0.5)
        drained_in = time.monotonic() - start
        stop.set()
        transport.cleanup()
    finally:
        serve.terminate()
        try:
            serve.wait(60)
        except subprocess.TimeoutExpired:
            serve.kill()
        try:
            import pika

            conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
            ch = conn.channel()
            ch.queue_delete(queue)
            ch.exchange_delete(exchange)
            conn.close()
        except Exception as exc:  # noqa: BLE001
            print(f"cleanup of {exchange}/{queue} failed: {exc}")
        if args.database == "postgresql":
            with psycopg.connect(PG, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; database "
          f"{args.database}")
    print(f"published {total} events at {args.rate:g}/s in {published_in:.1f}s (asked {args.seconds:g}s); "
          f"{args.subscriptions} webhook subscriptions, {args.websockets} WebSocket clients; all received after "
          f"{drained_in:.1f}s")
    print(summary("webhook", sink.latencies, expected_hooks))
    print(summary("websocket", ws_lat, expected_ws))
    print(f"deliveries/s (webhook): {len(sink.latencies) / max(drained_in, 1e-9):.0f}")
    if args.zaqar_events:
        reference = zaqar_reference(work, args.rate, args.zaqar_events)
        print(summary("zaqar", reference, args.zaqar_events) + "  (Zaqar 23 alone: post -> its webhook, 1 subscriber)")


if __name__ == "__main__":
    main()
