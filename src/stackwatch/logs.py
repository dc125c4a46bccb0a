"""Structured logging: one JSON object per line on stderr, secrets masked.

Every `extra={...}` field becomes a key. The message, every extra (at any nesting: a dict of settings, a list
of URLs), the exception text and the stack are masked here by `stackwatch.masking`, once, so no caller and no
library that logs through the root logger can leak a credential by accident.

`setup_logging()` without a level takes $STACKWATCH_LOG_LEVEL (commands without a `--log-level` option,
e.g. `stackwatch refresh`, log at that level), else leaves the root level as it is (WARNING by default).
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime

import orjson

from stackwatch.masking import MASK, is_secret_key, mask, mask_text

ENV_LOG_LEVEL = "STACKWATCH_LOG_LEVEL"
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

__all__ = ["ENV_LOG_LEVEL", "JsonFormatter", "mask", "setup_logging"]  # `mask` kept for older imports


def _field(key: str, value: object) -> object:
    if value not in (None, "") and is_secret_key(key):
        return MASK
    return mask(value)


def _render(value: object) -> str:
    """What orjson cannot serialise (exceptions, paths, objects) is logged as its masked `str`."""
    return mask_text(str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": mask_text(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = _field(key, value)
        if record.exc_info:
            doc["exc"] = mask_text(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["exc"] = mask_text(record.exc_text)
        if record.stack_info:
            doc["stack"] = mask_text(self.formatStack(record.stack_info))
        return orjson.dumps(doc, default=_render, option=orjson.OPT_PASSTHROUGH_DATACLASS).decode()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at emit time, so a swapped stderr (tests, daemons) is never stale."""

    @property
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # noqa: ANN001
        pass


def setup_logging(level: str | None = None) -> None:
    """Install the JSON handler on the root logger once; set the root level to `level`, else to
    $STACKWATCH_LOG_LEVEL when set."""
    level = level or os.environ.get(ENV_LOG_LEVEL) or None
    root = logging.getLogger()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # migrations are reported by `db upgrade` itself
    if not any(getattr(h, "_stackwatch", False) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
        handler._stackwatch = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    if level:
        root.setLevel(level.upper())
