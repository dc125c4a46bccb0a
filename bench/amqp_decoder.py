"""CPU per message of a plain pika consumer and of pika with stackwatch's delivery decoder, same backlog.

    .venv/bin/python bench/amqp_decoder.py [--events 100000] [--rounds 2]

Publishes the realistic ~2.3 KB notifications of bench/amqp.py onto a scratch queue, then drains them with
bench/amqp.py's raw ceiling consumer (pika, prefetch 1000, one ack per 1,000) and with the same consumer
whose deliveries `stackwatch.events.monitors.amqp_deliveries` decodes; alternating, `--rounds` times each.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import pika

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import amqp as bench  # noqa: E402

from stackwatch.events.monitors.amqp_deliveries import install  # noqa: E402
from tests.amqp.corpus import envelope_bodies  # noqa: E402


def decoded_consumer(url: str, queue: str, bodies: list[bytes]) -> None:
    n = len(bodies)
    conn = pika.BlockingConnection(pika.URLParameters(url))
    channel = conn.channel()
    channel.basic_qos(prefetch_count=1000)
    state = {"count": 0, "bytes": 0}

    def on_delivery(tag: int, body: bytes) -> None:
        state["count"] += 1
        state["bytes"] += len(body)
        if state["count"] % 1000 == 0 or state["count"] == n:
            channel.basic_ack(tag, multiple=True)

    assert install(conn, channel, on_delivery) is not None
    channel.basic_consume(queue, lambda *_: None)
    cpu, started = time.process_time(), time.perf_counter()
    while state["count"] < n:
        conn.process_data_events(time_limit=0.01)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    conn.close()
    assert state["bytes"] == sum(map(len, bodies)), "bodies differ"
    print(f"decoder consumer: {cpu / n * 1e6:.1f} us CPU per message, {elapsed / n * 1e6:.1f} us wall per message,"
          f" {n / elapsed:,.0f} msg/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    args = ap.parse_args()
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"bench-{tag}", f"stackwatch-bench-{tag}"
    bodies = [b for _, b in envelope_bodies(args.events)]
    try:
        for _ in range(args.rounds):
            bench.publish_backlog(args.amqp, exchange, queue, bodies)
            print(f"pika consumer: {bench.raw_ceiling(args.amqp, queue, len(bodies)):,.0f} msg/s")
            bench.publish_backlog(args.amqp, exchange, queue, bodies)
            decoded_consumer(args.amqp, queue, bodies)
    finally:
        bench.delete_queue(args.amqp, exchange, queue)


if __name__ == "__main__":
    main()
