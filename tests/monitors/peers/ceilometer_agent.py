"""Ceilometer 27's real notification agent with its `http://` event publisher, and oslo.messaging's real
Notifier feeding it through the RabbitMQ on 127.0.0.1:5672 (the shared telemetry recipe, section A).

Each agent gets its own notification topic (`monitors-<hex>`), so its queue (`<topic>.info`) is its own; the
queue is deleted afterwards.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pika

from stackwatch.devcloud import proc, telemetry_install

AMQP = "amqp://guest:guest@127.0.0.1:5672/"
SENDER = Path(__file__).with_name("send_notifications.py")


class Agent:
    def __init__(self, root: Path, publisher_url: str, ack_on_event_error: bool = True) -> None:
        self.root = root
        self.topic = f"monitors-{uuid.uuid4().hex[:10]}"
        self.publisher_url = publisher_url
        self.ack_on_event_error = ack_on_event_error
        self.proc: subprocess.Popen | None = None
        root.mkdir(parents=True, exist_ok=True)

    def bin(self, name: str) -> str:
        return str(telemetry_install.venv("ceilometer") / "bin" / name)

    def start(self, timeout: float = 90) -> None:
        (self.root / "event_pipeline.yaml").write_text(
            "---\nsources:\n  - name: event_source\n    events: ['*']\n    sinks: [event_sink]\n"
            f"sinks:\n  - name: event_sink\n    publishers:\n      - {self.publisher_url}\n")
        (self.root / "ceilometer.conf").write_text(
            f"[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:5672/\n"
            f"event_pipeline_cfg_file = {self.root / 'event_pipeline.yaml'}\nlog_file = {self.root / 'agent.log'}\n"
            f"[notification]\nworkers = 1\npipelines = event\n"
            f"ack_on_event_error = {self.ack_on_event_error}\n"
            f"[oslo_messaging_notifications]\ntopics = {self.topic}\n")
        out = (self.root / "agent.out").open("ab")
        self.proc = subprocess.Popen([self.bin("ceilometer-agent-notification"), "--config-file",
                                      str(self.root / "ceilometer.conf")], stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ceilometer agent exited {self.proc.returncode}; see {self.root}")
            if self.consumers() >= 1:
                return
            time.sleep(0.5)
        raise RuntimeError(f"ceilometer agent did not consume {self.topic}.info within {timeout} s")

    def consumers(self) -> int:
        conn = pika.BlockingConnection(pika.URLParameters(AMQP))
        try:
            return conn.channel().queue_declare(f"{self.topic}.info", passive=True).method.consumer_count
        except pika.exceptions.ChannelClosedByBroker:
            return 0
        finally:
            if conn.is_open:
                conn.close()

    def send(self, count: int, event_type: str = "compute.instance.create.end") -> None:
        """`count` nova notifications through oslo.messaging's Notifier (with a RequestContext)."""
        subprocess.run([self.bin("python"), str(SENDER), self.topic, str(count), event_type], check=True,
                       stdout=subprocess.DEVNULL, timeout=600)

    def stop(self) -> None:
        if self.proc is not None:
            proc.stop_pid(self.proc.pid, timeout=30)
        try:
            conn = pika.BlockingConnection(pika.URLParameters(AMQP))
            conn.channel().queue_delete(f"{self.topic}.info")
            conn.close()
        except pika.exceptions.AMQPError:
            pass
