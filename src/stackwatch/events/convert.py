"""Raw bytes -> canonical event (a record, or an Event), for every notification shape OpenStack produces.

Shapes (see tests/data/SOURCES.md): the oslo 2.0 envelope (`oslo.message` is a JSON string), the oslo 1.0 body
with `_context_*` keys, an oslo listener's view (`ctxt`, `metadata`), nova's versioned payloads
(`nova_object.data`), legacy payloads, keystone CADF, Panko / Ceilometer events (`generated`, `traits`) and a
captured AMQP message (`body` string plus `delivery_info`). Anything else raises ConversionError, whose message
is the quarantine reason.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

from stackwatch.events.model import (
    R_GROUP,
    R_LEVEL,
    R_PAYLOAD,
    R_PROJECT_ID,
    R_REQUEST_ID,
    R_USER_ID,
    RECORD_FIELDS,
    Event,
    Record,
    payload_text,
)
from stackwatch.events.timestamps import TimestampError, parse_timestamp
from stackwatch.switchboard.routes import RoutingTable, first_scalar_compiled

MAX_ENVELOPE_DEPTH = 4  # an envelope inside an envelope inside ... is hostile, not OpenStack


class ConversionError(ValueError):
    """The message cannot become an event; str(exc) is the quarantine reason."""


class Notification(NamedTuple):
    """The fields every shape yields, before routing: what the publisher said, unchanged.

    A NamedTuple, not a frozen dataclass: one is built per message and this is 3x cheaper to build.
    """

    event_type: str
    payload: Any
    message_id: str | None
    timestamp: datetime | None
    publisher_id: str | None
    priority: str | None
    context: dict[str, Any]
    source_shape: str


def decode_json(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if isinstance(raw, bytes):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as uexc:
                raise ConversionError(f"not UTF-8: {uexc.reason} at byte {uexc.start}") from None
        raise ConversionError(f"invalid JSON: {exc}") from None


def _opt_str(value: Any, name: str) -> str | None:
    if type(value) is str:  # nearly always: the checks below are for hostile input
        return value[:255] or None
    if value is None:
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return str(value)[:255]
    raise ConversionError(f"{name} must be a string, not {type(value).__name__}")


_EVENT_TYPE = re.compile(r"[^\x00-\x1f\x7f]{1,255}")


_VALID_TYPES: dict[str, str] = {}  # event types already checked: a cloud sends a few hundred, over and over


def _event_type(value: Any) -> str:
    checked = _VALID_TYPES.get(value) if type(value) is str else None
    if checked is not None:
        return checked
    if value is None:
        raise ConversionError("missing event_type")
    if not isinstance(value, str):
        raise ConversionError(f"event_type must be a string, not {type(value).__name__}")
    stripped = value.strip()
    if not _EVENT_TYPE.fullmatch(stripped):
        raise ConversionError(f"event_type {stripped[:80]!r} is empty, too long or has control characters")
    if len(_VALID_TYPES) >= 4096:
        _VALID_TYPES.clear()
    _VALID_TYPES[value] = stripped
    return stripped


def _timestamp(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value)
    except TimestampError as exc:
        raise ConversionError(str(exc)) from None


_CONTEXT_KEYS = tuple(
    ("_context_" + k, k)
    for k in ("project_id", "tenant_id", "project", "tenant", "user_id", "user", "request_id", "global_request_id")
)


def _from_oslo_body(doc: dict[str, Any], shape: str) -> Notification:
    # only the context keys we use: copying all of them (tokens included) would cost time and keep secrets
    get = doc.get
    context = {k: v for wire, k in _CONTEXT_KEYS if (v := get(wire)) is not None}
    # positional: the fields in Notification's order (keywords cost a third of this function, once per event)
    return Notification(
        _event_type(get("event_type")),
        get("payload"),
        _opt_str(get("message_id"), "message_id"),
        _timestamp(get("timestamp")),
        _opt_str(get("publisher_id"), "publisher_id"),
        _priority(get("priority")),
        context,
        shape,
    )


_PRIORITIES: dict[str, str] = {}  # a handful of values (INFO, ERROR, ...), upper-cased once each


def _priority(value: Any) -> str | None:
    known = _PRIORITIES.get(value) if type(value) is str else None
    if known is not None:
        return known
    text = _opt_str(value, "priority")
    if not text:
        return None
    priority = text.upper()[:16]
    if len(_PRIORITIES) < 64:
        _PRIORITIES[value] = priority
    return priority


def _from_listener(doc: dict[str, Any]) -> Notification:
    metadata = doc.get("metadata") or {}
    ctxt = doc.get("ctxt") or {}
    if not isinstance(metadata, dict) or not isinstance(ctxt, dict):
        raise ConversionError("listener view: `ctxt` and `metadata` must be objects")
    return Notification(
        event_type=_event_type(doc.get("event_type")),
        payload=doc.get("payload"),
        message_id=_opt_str(metadata.get("message_id"), "metadata.message_id"),
        timestamp=_timestamp(metadata.get("timestamp")),
        publisher_id=_opt_str(doc.get("publisher_id"), "publisher_id"),
        priority=_priority(doc.get("priority") or doc.get("method")),
        context=ctxt,
        source_shape="oslo-listener",
    )


def _traits_to_dict(traits: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(traits, list):
        raise ConversionError("panko event: `traits` must be a list")
    for trait in traits:
        if isinstance(trait, dict) and isinstance(trait.get("name"), str):
            out[trait["name"]] = trait.get("value")
        elif isinstance(trait, list) and len(trait) == 3 and isinstance(trait[0], str):  # ceilometer http
            out[trait[0]] = trait[2]
        else:
            raise ConversionError("panko event: each trait must be {name, type, value} or [name, type, value]")
    return out


def _from_panko(doc: dict[str, Any]) -> Notification:
    traits = _traits_to_dict(doc.get("traits"))
    raw = doc.get("raw") if isinstance(doc.get("raw"), dict) else {}
    inner_payload = raw.get("payload") if isinstance(raw.get("payload"), dict) else {}
    # refs are read from a flat view: traits over the raw notification's payload
    view = {**inner_payload, **traits}
    context = {k: traits[k] for k in ("project_id", "tenant_id", "user_id", "request_id") if k in traits}
    return Notification(
        event_type=_event_type(doc.get("event_type")),
        payload={"traits": doc.get("traits"), "raw": doc.get("raw"), "_view": view},
        message_id=_opt_str(doc.get("message_id"), "message_id"),
        timestamp=_timestamp(doc.get("generated")),
        publisher_id=_opt_str(raw.get("publisher_id") or traits.get("service"), "publisher_id"),
        priority=_priority(raw.get("priority")),
        context=context,
        source_shape="panko",
    )


def parse_notification(doc: Any, depth: int = 0) -> Notification:
    """Recognise the shape of a decoded message and extract its fields."""
    if depth > MAX_ENVELOPE_DEPTH:
        raise ConversionError("envelopes nested too deep")
    if not isinstance(doc, dict):
        raise ConversionError(f"a notification must be a JSON object, not {type(doc).__name__}")
    if "oslo.message" in doc:
        inner = doc["oslo.message"]
        if not isinstance(inner, str):
            raise ConversionError("bad oslo envelope: `oslo.message` must be a JSON string")
        version = doc.get("oslo.version")
        if version is not None and not str(version).startswith("2."):
            raise ConversionError(f"bad oslo envelope: unsupported oslo.version {version!r}")
        try:
            body = decode_json(inner)
        except ConversionError as exc:
            raise ConversionError(f"bad oslo envelope: {exc}") from None
        if not isinstance(body, dict):
            raise ConversionError("bad oslo envelope: `oslo.message` must hold a JSON object")
        return parse_notification(body, depth + 1)
    if "body" in doc and "delivery_info" in doc:  # a captured AMQP message
        body = doc["body"]
        if isinstance(body, str):
            body = decode_json(body)
        return parse_notification(body, depth + 1)
    if "traits" in doc and "generated" in doc:
        return _from_panko(doc)
    if "ctxt" in doc or "metadata" in doc:
        return _from_listener(doc)
    if "event_type" in doc or "payload" in doc:
        return _from_oslo_body(doc, "oslo-1.0")
    raise ConversionError("not a notification: no event_type, oslo envelope, listener view or Panko event")


def stable_message_id(doc: Any) -> str:
    """A message_id for sources that carry none: the same body always gets the same id."""
    canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return "sha256-" + hashlib.sha256(canonical).hexdigest()[:40]


def _context_value(context: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = context.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
            return str(value)[:255]
    return None


class Converter:
    """Notification -> record (or Event), with references and group from the routing table."""

    def __init__(self, routes: RoutingTable) -> None:
        self.routes = routes
        self._blank: Record = [None] * len(RECORD_FIELDS)

    def record(
        self,
        raw: bytes,
        provider: str,
        source: str,
        received_at: datetime | None = None,
        doc: Any = None,
        note: Notification | None = None,
    ) -> Record:
        """The message as a record (model.RECORD_FIELDS). `doc` and `note` may be passed when the caller
        already decoded and parsed `raw`."""
        if doc is None:
            doc = decode_json(raw)
        if note is None:
            note = parse_notification(doc)
        event_type = note.event_type
        route = self.routes.route(event_type)
        payload = note.payload
        view = payload.pop("_view") if note.source_shape == "panko" else payload
        record = self._blank.copy()
        for index, paths in route.ref_plan:
            record[index] = first_scalar_compiled(view, paths)
        ctx = note.context
        if record[R_PROJECT_ID] is None:
            record[R_PROJECT_ID] = _context_value(ctx, "project_id", "tenant_id", "project", "tenant")
        if record[R_USER_ID] is None:
            record[R_USER_ID] = _context_value(ctx, "user_id", "user")
        record[R_REQUEST_ID] = _context_value(ctx, "request_id", "global_request_id")
        record[:8] = (
            note.message_id or stable_message_id(doc), provider, source, event_type, note.timestamp,
            received_at or datetime.now(UTC), note.publisher_id, note.priority,
        )
        record[R_GROUP] = route.group
        record[R_LEVEL] = route.level
        record[R_PAYLOAD] = payload_text(payload)
        return record

    def convert(self, raw: bytes, provider: str, source: str, received_at: datetime | None = None) -> Event:
        """The message as an Event (what `record` builds, with the payload object kept)."""
        doc = decode_json(raw)
        note = parse_notification(doc)
        record = self.record(raw, provider, source, received_at, doc=doc, note=note)
        return Event.from_record(record, payload=note.payload)

