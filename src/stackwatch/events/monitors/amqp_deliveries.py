"""A fast path for Basic.Deliver on one pika channel: frames to (delivery tag, body) without pika's objects.

Written by hand because no maintained client does this cheaply: a plain pika consumer spends 29-42 us of CPU
per 2.3 KB notification (bench/amqp.py's raw ceiling, 2 cores) decoding the three frames of each delivery
into `Method`, `Header` and `Body` objects with their properties, re-decoding partial frames after every
4 KiB read, trimming its buffer by copying it, and dispatching through the channel, the content assembler
and the blocking adapter's event queue. stackwatch needs the delivery tag and the body, nothing else.

`install(connection, channel, on_delivery)` replaces the pika connection's `_on_data_available` (its
protocol entry point for received bytes) on that connection only. Deliveries on the channel are decoded
here, whole (method, content header, every body frame) or not at all: a delivery still arriving waits in
the buffer, so deliveries reach `on_delivery` in the broker's order, one path only. Every other frame (other
channels, other methods, heartbeats, Connection.Close...) goes to pika's own `_process_frame`, so the
protocol state, heartbeats and errors stay pika's. A malformed frame raises pika's `InvalidFrameError`, which
pika treats as a broken connection: nothing is acknowledged, the broker delivers again.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

from pika import exceptions, frame, spec

log = logging.getLogger(__name__)

#: (delivery_tag, body)
OnDelivery = Callable[[int, bytes], None]

_FRAME_HEAD = struct.Struct(">BHL")  # type, channel, payload size
_U64 = struct.Struct(">Q")  # a delivery tag; a content header's body size
_DELIVER = struct.pack(">HH", 60, 60)  # Basic.Deliver's class and method ids
_METHOD, _HEADER, _BODY, _END = spec.FRAME_METHOD, spec.FRAME_HEADER, spec.FRAME_BODY, spec.FRAME_END
#: bytes pika reads from the socket at a time (its default, 4 KiB, is two of our messages per read)
RECV_BYTES = 128 * 1024


def install(connection: Any, channel: Any, on_delivery: OnDelivery) -> DeliveryDecoder | None:
    """Decode `channel`'s deliveries on `connection` (pika BlockingConnection) here. None, and pika left as
    it is, when this pika's internals are not the ones this module was written against."""
    impl = getattr(connection, "_impl", None)
    number = getattr(channel, "channel_number", None)
    if impl is None or not isinstance(number, int) or not all(
        hasattr(impl, name) for name in ("_on_data_available", "_frame_buffer", "_process_frame", "bytes_received")
    ):
        log.warning("pika internals differ from what the delivery fast path expects; using pika's own path")
        return None
    decoder = impl._on_data_available = DeliveryDecoder(impl, number, on_delivery)
    transport = getattr(impl, "_transport", None)
    if transport is not None and hasattr(transport, "_MAX_RECV_BYTES"):
        transport._MAX_RECV_BYTES = RECV_BYTES  # the buffer is no longer copied per frame: larger reads are cheap
    return decoder


class DeliveryDecoder:
    """pika's `_on_data_available` for one connection, with deliveries on `channel_number` decoded here."""

    __slots__ = ("conn", "channel_number", "on_delivery", "deliveries")

    def __init__(self, conn: Any, channel_number: int, on_delivery: OnDelivery) -> None:
        self.conn = conn
        self.channel_number = channel_number
        self.on_delivery = on_delivery
        self.deliveries = 0

    def __call__(self, data_in: bytes) -> None:
        conn = self.conn
        buf = conn._frame_buffer + data_in if conn._frame_buffer else data_in
        size = len(buf)
        pos = 0
        head = _FRAME_HEAD.unpack_from
        try:
            while size - pos >= 7:
                kind, channel, length = head(buf, pos)
                end = pos + 8 + length
                if end > size:
                    break
                if buf[end - 1] != _END:
                    raise exceptions.InvalidFrameError("Invalid FRAME_END marker")
                if kind == _METHOD and channel == self.channel_number and buf[pos + 7:pos + 11] == _DELIVER:
                    after = self._delivery(buf, pos, end, size)
                    if after < 0:
                        break  # the rest of this delivery has not arrived yet
                    conn.bytes_received += after - pos
                    pos = after
                    continue
                _consumed, value = frame.decode_frame(buf[pos:end])
                conn.bytes_received += end - pos
                pos = end
                conn._frame_buffer = b""  # pika may read its buffer while it processes the frame
                conn._process_frame(value)
        finally:
            conn._frame_buffer = buf[pos:] if pos else buf

    def _delivery(self, buf: bytes, pos: int, end: int, size: int) -> int:
        """Hand one whole delivery starting at `pos` to `on_delivery`; its end, or -1 when incomplete."""
        p = pos + 11
        p += 1 + buf[p]  # consumer tag
        if p + 9 > end - 1:
            raise exceptions.InvalidFrameError("Basic.Deliver frame too short")
        (tag,) = _U64.unpack_from(buf, p)
        # content header: class, weight, body size, then properties stackwatch does not use
        q = self._frame_end(buf, end, size, _HEADER, "content header")
        if q < 0:
            return -1
        if q - end - 8 < 12:
            raise exceptions.InvalidFrameError("content header frame too short")
        (remaining,) = _U64.unpack_from(buf, end + 11)
        parts = []
        while remaining > 0:
            body_end = self._frame_end(buf, q, size, _BODY, "body frame")
            if body_end < 0:
                return -1
            length = body_end - q - 8
            if length > remaining:
                raise exceptions.InvalidFrameError("body frame longer than the content header announced")
            parts.append(buf[q + 7:body_end - 1])
            remaining -= length
            q = body_end
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        self.conn.frames_received += 2 + len(parts)
        self.deliveries += 1
        self.on_delivery(tag, body)
        return q

    def _frame_end(self, buf: bytes, at: int, size: int, kind: int, what: str) -> int:
        """Where the `kind` frame of this channel starting at `at` ends; -1 while it has not fully arrived."""
        if size - at < 7:
            return -1
        got, channel, length = _FRAME_HEAD.unpack_from(buf, at)
        if got != kind or channel != self.channel_number:
            raise exceptions.InvalidFrameError(f"frame type {got} on channel {channel} where a {what} was due")
        end = at + 8 + length
        if end > size:
            return -1
        if buf[end - 1] != _END:
            raise exceptions.InvalidFrameError("Invalid FRAME_END marker")
        return end
