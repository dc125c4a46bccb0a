"""Reading notification files for `stackwatch events ingest`: one JSON object, a JSON array, or JSON lines.

Each message comes out as its own bytes, so the catcher can size-check, convert or quarantine it alone: a bad
line never spoils the good ones around it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import orjson

from stackwatch.events.model import RawMessage


def read_source(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def split_messages(data: bytes) -> Iterator[bytes]:
    """Whole-document JSON first (object or array); otherwise one message per non-empty line."""
    if data.lstrip()[:1] in (b"{", b"["):
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, list):
            for element in doc:
                yield orjson.dumps(element)
            return
        if isinstance(doc, dict):
            yield data.strip()
            return
    lines = [line.strip() for line in data.splitlines() if line.strip()]
    if len(lines) > 1 and not any(_is_json_object(line) for line in lines[:50]):
        # a pretty-printed document that does not parse: it is one broken message, keep it whole
        yield data
        return
    yield from lines


def _is_json_object(chunk: bytes) -> bool:
    if not chunk.startswith(b"{"):
        return False
    try:
        return isinstance(orjson.loads(chunk), dict)
    except orjson.JSONDecodeError:
        return False


def iter_raw_messages(paths: list[str], source: str = "ingest") -> Iterator[RawMessage]:
    for path in paths:
        for body in split_messages(read_source(path)):
            yield RawMessage(body=body, source=source, ack_token=path)
