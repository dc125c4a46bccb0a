"""Panko API events and Ceilometer http-publisher bodies -> the raw messages the catcher converts.

Both carry Ceilometer events: `{message_id, event_type, generated, traits, raw}`. Panko's API gives each trait
as `{name, type, value}` with the value always a string (`"512"`, type `integer`); Ceilometer's http publisher
gives `[name, dtype, value]` with dtype 0-4 (none, string, integer, float, datetime) and a typed value. Here
values are typed again (so payloads keep numbers) and shapes checked strictly (a wrong trait is quarantined
with the reason, never half-stored); the catcher's converter (`convert._from_panko`) then reads the refs from
the traits. When `raw` holds the whole notification (Ceilometer's `store_raw`), that notification goes through
the same converters as an AMQP body, under the event's message_id.
"""

from __future__ import annotations

from typing import Any

import orjson

from stackwatch.events.convert import ConversionError

#: Ceilometer's trait dtypes (ceilometer.event.models.Trait) and Panko's names for them.
DTYPES = {0: "none", 1: "string", 2: "integer", 3: "float", 4: "datetime"}
_NAMES = {v: k for k, v in DTYPES.items()}


def typed_value(dtype: int, value: Any) -> Any:
    """The value as its dtype says (Panko sends every value as a string); ConversionError if it is not one."""
    if value is None or dtype == 0:
        return None
    try:
        if dtype == 2:
            if isinstance(value, (bool, float)):
                raise ValueError
            return int(value)
        if dtype == 3:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
    except (TypeError, ValueError):
        raise ConversionError(f"trait value {str(value)[:40]!r} is not of type {DTYPES[dtype]}") from None
    if not isinstance(value, str):
        raise ConversionError(f"trait value of type {DTYPES[dtype]} must be a string, not {type(value).__name__}")
    return value


def _trait(trait: Any) -> list[Any]:
    """One trait as `[name, dtype, typed value]`, from either wire form."""
    if isinstance(trait, dict):
        name, dtype = trait.get("name"), _NAMES.get(trait.get("type"))  # type: ignore[arg-type]
        if dtype is None:
            raise ConversionError(f"trait type {str(trait.get('type'))[:20]!r} is not one of {sorted(_NAMES)}")
        value = trait.get("value")
    elif isinstance(trait, list) and len(trait) == 3:
        name, dtype, value = trait
        if isinstance(dtype, bool) or dtype not in DTYPES:
            raise ConversionError(f"trait dtype {str(dtype)[:20]!r} is not 0-4")
    else:
        raise ConversionError("each trait must be [name, dtype, value] or {name, type, value}")
    if not isinstance(name, str) or not name or len(name) > 255:
        raise ConversionError("trait name must be a non-empty string")
    return [name, dtype, typed_value(dtype, value)]


def event_body(event: Any) -> bytes:
    """A Ceilometer event (either wire form) as the JSON body the catcher converts; ConversionError if bad."""
    if not isinstance(event, dict):
        raise ConversionError(f"an event must be a JSON object, not {type(event).__name__}")
    for key in ("message_id", "event_type", "generated"):
        if not isinstance(event.get(key), str) or not event[key]:
            raise ConversionError(f"event without a string {key}")
    traits = event.get("traits")
    if not isinstance(traits, list):
        raise ConversionError("event `traits` must be a list")
    raw = event.get("raw")
    if raw is not None and not isinstance(raw, dict):
        raise ConversionError("event `raw` must be an object")
    if raw and isinstance(raw.get("event_type"), str) and "payload" in raw:
        return orjson.dumps({**raw, "message_id": event["message_id"]})
    typed = [_trait(t) for t in traits]
    return orjson.dumps({"message_id": event["message_id"], "event_type": event["event_type"],
                         "generated": event["generated"], "traits": typed, "raw": raw or {}})


def publisher_body(body: bytes, raw_only_event_type: str) -> tuple[list[bytes], list[tuple[str, bytes]]]:
    """Split one POST of Ceilometer's http publisher into event bodies and refused parts.

    It sends a JSON list of events, one bare event (`?batch=False`) or a list of notification payloads
    (`?raw_only=True`, which carry no event type: they get `raw_only_event_type`). Returns (bodies for the
    catcher, [(reason, raw bytes)] to quarantine).
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return [], [(f"ceilometer http body is not JSON: {exc}", body)]
    items = doc if isinstance(doc, list) else [doc]
    good: list[bytes] = []
    bad: list[tuple[str, bytes]] = []
    for item in items:
        if isinstance(item, dict) and ("traits" in item or "generated" in item):
            try:
                good.append(event_body(item))
            except ConversionError as exc:
                bad.append((f"ceilometer http event: {exc}", orjson.dumps(item)))
        elif isinstance(item, dict) and isinstance(item.get("event_type"), str):
            good.append(orjson.dumps(item))  # a whole notification (raw_only with store_raw)
        elif isinstance(item, dict) and item:
            good.append(orjson.dumps({"event_type": raw_only_event_type, "payload": item}))
        else:
            bad.append((f"ceilometer http body: an item is a {type(item).__name__}, not an event object",
                        orjson.dumps(item)))
    if not items:
        bad.append(("ceilometer http body: an empty list", body))
    return good, bad
