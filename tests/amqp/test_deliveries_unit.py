"""The delivery fast path on frames marshalled by pika itself (the encoder RabbitMQ's frames follow).

The real-broker tests (test_oslo_notifier, test_faults) run through the same decoder; these feed it every
split of the byte stream a socket could produce, frames of other channels and methods, and broken frames.
"""

from __future__ import annotations

import pytest
from pika import exceptions, frame, spec

from stackwatch.events.monitors.amqp_deliveries import DeliveryDecoder

CHANNEL = 1
FRAME_MAX = 4096  # small, so a body spans several body frames as a large one does under RabbitMQ's 128 KiB


class Conn:
    """The attributes of pika's Connection the decoder uses; `_process_frame` records what pika would get."""

    def __init__(self) -> None:
        self._frame_buffer = b""
        self.bytes_received = 0
        self.frames_received = 0
        self.processed: list[object] = []

    def _process_frame(self, value: object) -> None:
        self.processed.append(value)


def deliver(tag: int, body: bytes, channel: int = CHANNEL, redelivered: bool = False) -> bytes:
    method = spec.Basic.Deliver(consumer_tag="ctag1.stackwatch", delivery_tag=tag, redelivered=redelivered,
                                exchange="nova", routing_key="notifications.info")
    props = spec.BasicProperties(content_type="application/json", delivery_mode=2, headers={"x": 1})
    out = frame.Method(channel, method).marshal() + frame.Header(channel, len(body), props).marshal()
    for start in range(0, len(body), FRAME_MAX - 8):
        out += frame.Body(channel, body[start:start + FRAME_MAX - 8]).marshal()
    return out


BODIES = [b"", b"{}", b'{"oslo.version": "2.0", "oslo.message": "..."}' * 50, bytes(range(256)) * 70]


def stream() -> tuple[bytes, list[tuple[int, bytes]], int]:
    """Deliveries mixed with frames that are pika's business; returns (bytes, deliveries, other frames)."""
    data = b""
    expected = []
    others = 0
    for i, body in enumerate(BODIES * 3, start=1):
        data += deliver(i, body, redelivered=i % 2 == 0)
        expected.append((i, body))
        if i % 3 == 0:
            data += frame.Heartbeat().marshal()
            others += 1
        if i % 4 == 0:  # another channel's delivery: not ours to decode
            data += deliver(99, b"other channel", channel=2)
            others += 3  # method, header, body
        if i % 5 == 0:
            data += frame.Method(CHANNEL, spec.Basic.CancelOk(consumer_tag="ctag1.stackwatch")).marshal()
            others += 1
    return data, expected, others


@pytest.mark.parametrize("chunk", [1, 7, 8, 11, 100, 1000, 4096, 65536, 10**9])
def test_every_split_of_the_stream_gives_the_same_deliveries_in_order(chunk):
    data, expected, others = stream()
    conn = Conn()
    got: list[tuple[int, bytes]] = []
    decoder = DeliveryDecoder(conn, CHANNEL, lambda tag, body: got.append((tag, body)))
    for start in range(0, len(data), chunk):
        decoder(data[start:start + chunk])
    assert got == expected
    assert decoder.deliveries == len(expected)
    assert len(conn.processed) == others  # everything else went to pika, whole and decoded by pika
    assert sum(isinstance(f, frame.Heartbeat) for f in conn.processed) == len(expected) // 3
    assert all(getattr(f, "channel_number", 0) in (0, 2) or isinstance(f.method, spec.Basic.CancelOk)
               for f in conn.processed)
    assert conn.bytes_received == len(data)  # pika's heartbeat checker watches this
    assert conn._frame_buffer == b""


def test_a_delivery_still_arriving_waits_in_the_buffer():
    data = deliver(7, b"x" * 10_000)
    conn = Conn()
    got: list[tuple[int, bytes]] = []
    decoder = DeliveryDecoder(conn, CHANNEL, lambda tag, body: got.append((tag, body)))
    decoder(data[:-1])
    assert got == [] and conn._frame_buffer == data[:-1] and conn.bytes_received == 0
    decoder(data[-1:])
    assert got == [(7, b"x" * 10_000)] and conn._frame_buffer == b""


def _bad_end_marker(data: bytes) -> bytes:
    return data[:-1] + b"\x00"


def _body_where_header_is_due(data: bytes) -> bytes:
    method = frame.Method(CHANNEL, spec.Basic.Deliver(consumer_tag="c", delivery_tag=1, exchange="nova",
                                                      routing_key="notifications.info")).marshal()
    return method + frame.Body(CHANNEL, b"{}").marshal()


def _body_longer_than_announced(data: bytes) -> bytes:
    header = frame.Header(CHANNEL, 2, spec.BasicProperties()).marshal()
    method = data[:data.index(header[:3])]
    return method + header + frame.Body(CHANNEL, b"{}{}").marshal()


@pytest.mark.parametrize(("damage", "message"), [
    (_bad_end_marker, "FRAME_END"),
    (_body_where_header_is_due, "content header"),
    (_body_longer_than_announced, "body frame"),
])
def test_broken_frames_raise_pikas_invalid_frame_error(damage, message):
    """pika treats InvalidFrameError as a broken connection: nothing acknowledged, delivered again."""
    conn = Conn()
    decoder = DeliveryDecoder(conn, CHANNEL, lambda tag, body: pytest.fail("a broken delivery was handed on"))
    with pytest.raises(exceptions.InvalidFrameError, match=message):
        decoder(damage(deliver(1, b"{}")))
