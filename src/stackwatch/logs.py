"""Structured logging: one JSON object per line on stderr, secrets masked.

Every `extra={...}` field becomes a key. Values that look like credentials (passwords in URLs, tokens) are
masked here, once, so no caller can leak them by accident.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime

import orjson

_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@", re.I)
_SECRET_KEYS = re.compile(r"(password|secret|token|passwd|credential|auth_key)", re.I)


def mask(text: str) -> str:
    """`amqp://guest:guest@h/` -> `amqp://guest:***@h/`."""
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def _clean(key: str, value: object) -> object:
    if _SECRET_KEYS.search(key):
        return "***"
    if isinstance(value, str):
        return mask(value)
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = _clean(key, value)
        if record.exc_info:
            doc["exc"] = mask(self.formatException(record.exc_info))
        return orjson.dumps(doc, default=str).decode()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at emit time, so a swapped stderr (tests, daemons) is never stale."""

    @property
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # noqa: ANN001
        pass


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations are reported by `db upgrade` itself
    if any(getattr(h, "_stackwatch", False) for h in root.handlers):
        root.setLevel(level.upper())
        return
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    handler._stackwatch = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
