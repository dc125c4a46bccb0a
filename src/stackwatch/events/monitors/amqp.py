"""The AMQP monitor: oslo.messaging notifications straight off RabbitMQ with pika.

One consumer thread owns the pika connection (pika is not thread-safe). It consumes the provider's own
durable queue, bound to `<topic>.*` (and every explicit priority) on each service exchange, and groups
deliveries into batches by size or age (`batch_size`, `flush_ms`). A batch goes to a hand-off queue of
one slot; the runner's thread stores it while this thread already receives the next one. `ack(batch)`
comes back from the runner's thread through `connection.add_callback_threadsafe` and acknowledges the
batch with one `basic_ack(last_tag, multiple=True)`. Deliveries are decoded by `amqp_deliveries` (a
fast path beside pika's frame objects; `fast_deliveries: false` turns it off).

Back-pressure: the broker never sends more than `prefetch` unacknowledged messages, so a slow or down
store stops the flow at the broker, not in our memory. Delivery tags belong to one channel: a batch
received on a connection that has since been lost is never acknowledged (it is delivered again, and the
store's unique message_id absorbs the copy).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import random
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pika
import pika.exceptions

from stackwatch.events.model import RawMessage
from stackwatch.events.monitors import amqp_deliveries
from stackwatch.events.monitors.amqp_config import PRIORITIES, AmqpConfig, parse_amqp_section
from stackwatch.events.monitors.base import Availability, Batch, Monitor, MonitorConfigError
from stackwatch.masking import mask_url

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import ProviderConfig

log = logging.getLogger(__name__)

_STOP = object()
_PRECONDITION_FAILED = 406


def _nothing() -> None:
    pass


def _section(provider: ProviderConfig) -> dict[str, Any] | None:
    events = getattr(provider, "events", None)
    return getattr(events, "amqp", None) if events is not None else None


def connection_parameters(cfg: AmqpConfig, url: str) -> pika.URLParameters:
    """pika parameters for one URL with the section's vhost, heartbeat, timeouts and TLS applied."""
    params = pika.URLParameters(url)
    if cfg.vhost is not None:
        params.virtual_host = cfg.vhost
    params.heartbeat = cfg.heartbeat
    params.socket_timeout = cfg.connect_timeout
    params.stack_timeout = cfg.connect_timeout * 3
    params.blocked_connection_timeout = None
    params.connection_attempts = 1
    params.client_properties = {"connection_name": "stackwatch-amqp-monitor"}
    tls = cfg.tls
    if tls.enabled or params.ssl_options is not None:
        ctx = ssl.create_default_context(cafile=tls.ca_file)
        if tls.cert_file:
            ctx.load_cert_chain(tls.cert_file, tls.key_file)
        if not tls.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        params.ssl_options = pika.SSLOptions(ctx, tls.server_hostname or params.host)
        if urlsplit(url).port is None:
            params.port = 5671
    return params


class AmqpMonitor(Monitor):
    name = "amqp"
    priority = 100

    def __init__(self, provider: ProviderConfig) -> None:
        super().__init__(provider)
        self.cfg = parse_amqp_section(_section(provider))
        self.queue = self.cfg.queue_name(provider.name)
        self.prefetch = self.cfg.effective_prefetch
        self._flush_s = self.cfg.flush_ms / 1000.0
        self._out: queue.Queue[Any] = queue.Queue(maxsize=1)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Owned by the consumer thread (read elsewhere only for stats / the ack shortcut):
        self._conn: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._gen = 0
        self._pending: list[RawMessage] = []
        self._pending_last_tag = 0
        self._first_at = 0.0
        self._seq = 0
        self._gen_received = 0
        self._gen_acked = 0
        self.connected = threading.Event()
        self.counters = {
            "received": 0, "batches": 0, "acked": 0, "stale_acks": 0, "connects": 0, "connect_failures": 0,
        }
        self.last_error: str | None = None
        self._decoder: amqp_deliveries.DeliveryDecoder | None = None
        self._earlier_fast_deliveries = 0  # decoded on connections before the current one

    # -- plugin contract -------------------------------------------------------------------------------
    @classmethod
    def available(cls, provider: ProviderConfig) -> Availability:
        section = _section(provider)
        if section is None:
            return Availability(False, "no events.amqp section for this provider")
        try:
            cfg = parse_amqp_section(section)
        except MonitorConfigError as exc:
            return Availability(False, f"invalid configuration: {exc}", misconfigured=True)
        urls = ", ".join(mask_url(u) for u in cfg.urls)
        return Availability(True, f"queue {cfg.queue_name(provider.name)} on {urls}")

    @classmethod
    def probe(cls, provider: ProviderConfig) -> Availability | None:
        """Open (and close) an AMQP connection to the first URL that answers."""
        section = _section(provider)
        if section is None:
            return None
        try:
            cfg = parse_amqp_section(section)
        except MonitorConfigError as exc:
            return Availability(False, str(exc))
        errors = []
        for url in cfg.urls:
            try:
                conn = pika.BlockingConnection(connection_parameters(cfg, url))
            except (pika.exceptions.AMQPError, OSError) as exc:
                errors.append(f"{mask_url(url)}: {exc!r}")
                continue
            conn.close()
            return Availability(True, f"broker answers at {mask_url(url)}")
        return Availability(False, "no broker answers: " + "; ".join(errors))

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name=f"amqp-{self.provider.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def batches(self) -> Iterator[Batch]:
        while True:
            try:
                item = self._out.get(timeout=0.5)
            except queue.Empty:
                if self._stopping.is_set() and (self._thread is None or not self._thread.is_alive()):
                    return
                continue
            if item is _STOP or self._stopping.is_set():
                # Not acknowledged: the broker delivers it again to the next consumer.
                return
            yield item

    def ack(self, batch: Batch) -> None:
        gen, last_tag = batch.token
        conn = self._conn
        if gen != self._gen or conn is None:
            self.counters["stale_acks"] += 1
            return
        try:
            conn.add_callback_threadsafe(functools.partial(self._ack_now, gen, last_tag, len(batch)))
        except (pika.exceptions.ConnectionWrongStateError, AttributeError):
            self.counters["stale_acks"] += 1

    def stats(self) -> dict[str, Any]:
        decoder = self._decoder
        fast = self._earlier_fast_deliveries + decoder.deliveries if decoder is not None else None
        return {**self.counters, "generation": self._gen, "queue": self.queue, "last_error": self.last_error,
                "fast_deliveries": fast}

    # -- consumer thread -------------------------------------------------------------------------------
    def _wake(self) -> None:
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.add_callback_threadsafe(lambda: None)

    def _ack_now(self, gen: int, last_tag: int, count: int) -> None:
        channel = self._channel
        if gen != self._gen or channel is None or not channel.is_open:
            self.counters["stale_acks"] += 1
            return
        channel.basic_ack(delivery_tag=last_tag, multiple=True)
        self.counters["acked"] += count
        self._gen_acked += count

    def _backoff(self, failures: int) -> float:
        cap = min(self.cfg.reconnect_max, self.cfg.reconnect_min * (2 ** min(failures, 16)))
        return random.uniform(cap / 2, cap)  # "equal jitter": never zero, never in lockstep

    def _run(self) -> None:
        failures = 0
        index = 0
        urls = self.cfg.urls
        try:
            while not self._stopping.is_set():
                url = urls[index % len(urls)]
                index += 1
                try:
                    self._consume(url)
                    failures = 0
                except (pika.exceptions.AMQPError, OSError) as exc:
                    self.counters["connect_failures"] += 1
                    self.last_error = f"{mask_url(url)}: {exc!r}"
                    log.warning("amqp %s: connection to %s lost or refused: %r", self.provider.name,
                                mask_url(url), exc)
                except Exception as exc:  # a bug or an unexpected client state: reconnect, never die
                    self.counters["connect_failures"] += 1
                    self.last_error = f"{mask_url(url)}: unexpected {exc!r}"
                    log.exception("amqp %s: unexpected error on %s; reconnecting", self.provider.name,
                                  mask_url(url))
                finally:
                    self._drop_connection()
                if self._stopping.is_set():
                    break
                # Try the next URL at once; back off once every URL of the round failed.
                if index % len(urls) == 0 or failures:
                    delay = self._backoff(failures)
                    failures += 1
                    log.info("amqp %s: reconnecting in %.2fs", self.provider.name, delay)
                    self._stopping.wait(delay)
        except Exception:  # pragma: no cover - a bug; make it visible and let the runner decide
            log.exception("amqp %s: consumer thread crashed", self.provider.name)
            self.last_error = "consumer thread crashed"
        finally:
            self._put_stop()

    def _put_stop(self) -> None:
        while True:
            try:
                self._out.put(_STOP, timeout=0.2)
                return
            except queue.Full:
                # the runner has stopped reading: make room (the dropped batch is not acknowledged)
                with contextlib.suppress(queue.Empty):
                    self._out.get_nowait()

    def _drop_connection(self) -> None:
        conn, self._conn, self._channel = self._conn, None, None
        self.connected.clear()
        self._pending = []
        if conn is not None and conn.is_open:
            with contextlib.suppress(Exception):
                conn.close()

    def _declare(self, conn: pika.BlockingConnection) -> Any:
        """Declare our queue and the exchanges, bind; return a usable channel.

        A declaration that clashes with an existing entity (PreconditionFailed) closes the channel: we
        log it, open a new channel and use the entity as it is.
        """
        cfg = self.cfg
        channel = conn.channel()
        args = {"x-queue-type": "quorum"} if cfg.queue_type == "quorum" else None
        try:
            channel.queue_declare(self.queue, durable=True, arguments=args)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != _PRECONDITION_FAILED:
                raise
            log.warning("amqp %s: queue %s exists with other arguments (%s); using it as it is",
                        self.provider.name, self.queue, exc.reply_text)
            channel = conn.channel()
            channel.queue_declare(self.queue, passive=True)
        keys = [f"{topic}.*" for topic in cfg.topics] + [f"{t}.{p}" for t in cfg.topics for p in PRIORITIES]
        for exchange in cfg.exchanges:
            try:
                channel.exchange_declare(exchange, exchange_type="topic", durable=cfg.durable_exchanges,
                                         auto_delete=False)
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != _PRECONDITION_FAILED:
                    raise
                log.warning("amqp %s: exchange %s exists with other settings (%s); binding to it as it is",
                            self.provider.name, exchange, exc.reply_text)
                channel = conn.channel()
            for key in keys:
                channel.queue_bind(self.queue, exchange, routing_key=key)
        return channel

    def _consume(self, url: str) -> None:
        conn = pika.BlockingConnection(connection_parameters(self.cfg, url))
        self._conn = conn
        channel = self._declare(conn)
        channel.basic_qos(prefetch_count=self.prefetch)
        self._gen += 1
        gen = self._gen
        self._channel = channel
        self._pending = []
        self.counters["connects"] += 1
        now = datetime.now

        batch_size = self.cfg.batch_size
        # process_data_events returns early only for pika's own events; a timer due now is one, so the
        # loop below looks at the batch when it starts (flush at once if the writer is idle, else wait up to
        # flush_ms) and when it is full, instead of receiving until its time limit
        look_now = functools.partial(conn.call_later, 0, _nothing)

        def on_delivery(tag: int, body: bytes) -> None:
            pending = self._pending
            if not pending:
                self._first_at = time.monotonic()
                look_now()
            pending.append(RawMessage(body, "amqp", tag, now(UTC)))
            self._pending_last_tag = tag
            if len(pending) == batch_size:
                look_now()

        def on_message(_ch: Any, method: Any, _props: Any, body: bytes) -> None:
            on_delivery(method.delivery_tag, body)

        if self.cfg.fast_deliveries:
            # from here on, this channel's deliveries reach on_delivery without pika's frame objects
            if self._decoder is not None:  # the count runs on across reconnects
                self._earlier_fast_deliveries += self._decoder.deliveries
            self._decoder = amqp_deliveries.install(conn, channel, on_delivery)
        cancelled: list[object] = []
        channel.add_on_cancel_callback(cancelled.append)  # the broker cancelled us (queue deleted, ...)
        consumer_tag = channel.basic_consume(self.queue, on_message, auto_ack=False)
        self._gen_received = self._gen_acked = 0
        self.connected.set()
        log.info("amqp %s: consuming %s on %s (prefetch %d, batch %d / %.0f ms)", self.provider.name,
                 self.queue, mask_url(url), self.prefetch, self.cfg.batch_size, self.cfg.flush_ms)
        flush_s = self._flush_s
        out = self._out
        while not self._stopping.is_set():
            if cancelled:
                raise pika.exceptions.ConsumerCancelled(f"broker cancelled the consumer on {self.queue}")
            if self._pending:
                age = time.monotonic() - self._first_at
                # Flush at size, at age, or at once when nothing is in flight (the writer is idle: waiting
                # would only add latency; under load batches grow by themselves while the writer works).
                idle = self._gen_acked >= self._gen_received
                if len(self._pending) >= batch_size or age >= flush_s or idle:
                    if not out.full():
                        msgs = self._pending
                        self._pending = []
                        self._seq += 1
                        self.counters["received"] += len(msgs)
                        self._gen_received += len(msgs)
                        self.counters["batches"] += 1
                        out.put_nowait(Batch(tuple(msgs), self._seq, (gen, self._pending_last_tag)))
                        continue
                    timeout = 0.002  # the writer is busy: keep the connection alive, look again soon
                else:
                    timeout = max(flush_s - age, 0.0005)
            else:
                timeout = 0.5
            conn.process_data_events(time_limit=timeout)
        # Graceful stop: cancel, let the batch being written be acknowledged, then close (requeues rest).
        with contextlib.suppress(Exception):
            channel.basic_cancel(consumer_tag)
            deadline = time.monotonic() + 5.0
            while self._gen == gen and self._gen_acked < self._gen_received - self._queued() \
                    and time.monotonic() < deadline:
                conn.process_data_events(time_limit=0.05)

    def _queued(self) -> int:
        try:
            item = self._out.queue[0]
        except IndexError:
            return 0
        return len(item) if isinstance(item, Batch) else 0
