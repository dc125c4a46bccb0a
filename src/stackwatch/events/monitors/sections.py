"""Validation of a monitor's own configuration section against its pydantic model (amqp, panko, http, ...).

One place that turns pydantic's errors into the message an operator reads: every problem names its key
(`events.panko.page_size: ...`, `events.amqp.urls: unknown key`).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from stackwatch.events.monitors.base import Availability, MonitorConfigError

M = TypeVar("M", bound=BaseModel)


def parse_section(model: type[M], section: Any, where: str) -> M:
    """Validate a raw monitor section against `model`; errors name the offending key."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise MonitorConfigError(f"{where}: must be a mapping, got {type(section).__name__}")
    try:
        return model.model_validate(section)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{where}.{loc}: {msg}" if loc else f"{where}: {msg}")
        raise MonitorConfigError("; ".join(problems)) from None


def section_verdict(events: Any, key: str, model: type[M]) -> tuple[M | None, Availability | None]:
    """A provider's `events.<key>` section validated for `available()`: (config, None), or (None, the verdict
    to return: absent, or present but invalid, which `auto` must not silently replace)."""
    section = getattr(events, key, None)
    if section is None:
        return None, Availability(False, f"no events.{key} section for this provider")
    try:
        return parse_section(model, section, f"events.{key}"), None
    except MonitorConfigError as exc:
        return None, Availability(False, f"invalid configuration: {exc}", misconfigured=True)
