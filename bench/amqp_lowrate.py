"""CPU per message of a consumer at a steady 2,000 msg/s (the latency phase's rate), where deliveries arrive
one by one: plain pika (ack every 8) and the AMQP monitor alone (no store, each batch acknowledged at once).

    .venv/bin/python bench/amqp_lowrate.py               # both consumers, twice
    PAUSE=0.002 .venv/bin/python bench/amqp_lowrate.py   # plain pika reading every 2 ms, not at each delivery

In a drain the same plain consumer spends 18-26 us a message (bench/amqp.py's raw ceiling); the difference is
what a lone delivery costs (bench/RESULTS.md, session 5).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
import uuid

import pika

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import amqp as bench  # noqa: E402

from stackwatch.events.monitors.amqp import AmqpMonitor  # noqa: E402

URL = "amqp://guest:guest@127.0.0.1:5672/"
RATE = 2000


def publish(exchange: str, count: int) -> mp.Process:
    out = tempfile.mktemp()
    proc = mp.get_context("spawn").Process(target=bench._steady_publisher,
                                           args=(URL, exchange, RATE, count / RATE, out))
    proc.start()
    return proc


def plain(exchange: str, queue: str, n: int) -> float:
    conn = pika.BlockingConnection(pika.URLParameters(URL))
    channel = conn.channel()
    channel.basic_qos(prefetch_count=1000)
    consumer = bench.PlainConsumer(n, ack_every=8)
    channel.basic_consume(queue, consumer)
    cpu = time.process_time()
    publisher = publish(exchange, n)
    pause = float(os.environ.get("PAUSE", "0"))
    if pause:
        while consumer.count < n:
            time.sleep(pause)
            conn.process_data_events(time_limit=0)
    else:
        channel.start_consuming()
    cpu = time.process_time() - cpu
    publisher.join()
    conn.close()
    return cpu / n * 1e6


def monitor(exchange: str, queue: str, n: int) -> tuple[float, dict]:
    mon = AmqpMonitor(bench.provider("lowrate", exchange, queue, URL))
    mon.start()
    assert mon.connected.wait(10)
    got = 0
    done = threading.Event()

    def consume() -> None:
        nonlocal got
        for batch in mon.batches():
            mon.ack(batch)
            got += len(batch.messages)
            if got >= n:
                done.set()
                return

    threading.Thread(target=consume, daemon=True).start()
    cpu = time.process_time()
    publisher = publish(exchange, n)
    done.wait(60)
    cpu = time.process_time() - cpu
    publisher.join()
    stats = mon.stats()
    mon.stop()
    return cpu / n * 1e6, stats


def main() -> None:
    tag = uuid.uuid4().hex[:8]
    exchange, queue = f"lowrate-{tag}", f"stackwatch-lowrate-{tag}"
    conn = pika.BlockingConnection(pika.URLParameters(URL))
    bench.declare(conn.channel(), exchange, queue)
    conn.close()
    try:
        for _ in range(2):
            print(f"plain pika, ack every 8: {plain(exchange, queue, 20000):.1f} us CPU a message", flush=True)
            if not os.environ.get("PAUSE"):
                us, stats = monitor(exchange, queue, 20000)
                print(f"AMQP monitor alone, each batch acked: {us:.1f} us CPU a message, "
                      f"{stats['received']} messages in {stats['batches']} batches", flush=True)
    finally:
        bench.delete_queue(URL, exchange, queue)


if __name__ == "__main__":
    main()
