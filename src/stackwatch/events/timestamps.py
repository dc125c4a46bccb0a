"""Lenient parsing of the timestamps OpenStack puts on notifications.

oslo writes `2026-11-22 02:02:49.708327` (UTC, no zone, microseconds optional); Panko and CADF write ISO 8601
with `Z` or `+0000`; some real captures carry mangled forms such as `2014-05-1510: 24: 56.335612`. Anything
that still has no date and time in it is refused, so the message is quarantined rather than misplaced.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_TS = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]\s*)?(\d{1,2}):\s*(\d{1,2})(?::\s*(\d{1,2})(?:[.,](\d{1,9}))?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2}|UTC|GMT)?\s*$",
    re.IGNORECASE,
)


class TimestampError(ValueError):
    pass


def parse_timestamp(value: object) -> datetime:
    """A timezone-aware UTC datetime from an oslo, ISO 8601 or epoch value; TimestampError otherwise."""
    if type(value) is str and 19 <= len(value) <= 32 and value[10] in " T":  # the common forms, at C speed
        try:
            fast = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if fast.tzinfo is None:  # oslo's naive UTC; parsing again with the zone is 4x cheaper than replace()
                return datetime.fromisoformat(value + "+00:00")
            return fast if fast.tzinfo is UTC else fast.astimezone(UTC)
    if isinstance(value, bool):
        raise TimestampError(f"unparseable timestamp {value!r}")
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(float(value), tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise TimestampError(f"timestamp {value!r} out of range") from exc
    if not isinstance(value, str):
        raise TimestampError(f"timestamp must be a string or a number, not {type(value).__name__}")
    match = _TS.match(value[:64])
    if not match:
        raise TimestampError(f"unparseable timestamp {value[:64]!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz: timezone = UTC
    if zone and zone.upper() not in ("Z", "UTC", "GMT"):
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        parsed = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tz)
    except ValueError as exc:
        raise TimestampError(f"unparseable timestamp {value[:64]!r}: {exc}") from exc
    return parsed.astimezone(UTC)
