"""The canonical event (DESIGN.md §2), its record form on the way to the store, and the raw message.

`Event` and `RawMessage` are frozen dataclasses: an event is a fact, nothing downstream may edit it. The
catcher does not build an `Event` per message: it builds a record (a list in `RECORD_FIELDS` order, the
payload already JSON text), so the decoded message can be freed at once and the store binds the list as it
is. Events are made from records only for whoever reads them (the switchboard), after they are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from stackwatch.masking import mask, may_hold_secrets

#: Reference fields an event can carry, in the order of DESIGN.md §2.
REF_FIELDS: tuple[str, ...] = (
    "vm_ref",
    "host_ref",
    "image_ref",
    "volume_ref",
    "snapshot_ref",
    "network_ref",
    "subnet_ref",
    "port_ref",
    "router_ref",
    "floating_ip_ref",
    "security_group_ref",
    "stack_ref",
    "availability_zone",
)

#: Timeline groups and levels (DESIGN.md §2).
GROUPS: tuple[str, ...] = (
    "power",
    "creation",
    "deletion",
    "configuration",
    "migration",
    "snapshot",
    "network",
    "storage",
    "identity",
    "other",
)
LEVELS: tuple[str, ...] = ("critical", "detail")

#: Field names of an event's JSON, exactly as the contract states them.
EVENT_JSON_FIELDS: tuple[str, ...] = (
    "message_id",
    "provider",
    "source",
    "event_type",
    "timestamp",
    "received_at",
    "publisher_id",
    "priority",
    "project_id",
    "user_id",
    "request_id",
    *REF_FIELDS,
    "group",
    "level",
    "payload",
)


#: The fields of a record, in order: the contract's, as its JSON lists them; the store derives its sort time.
RECORD_FIELDS: tuple[str, ...] = EVENT_JSON_FIELDS
#: A record: what `Converter.record` returns and `EventStore.write_records` takes (see the module docstring).
Record = list[Any]
RECORD_INDEX: dict[str, int] = {name: index for index, name in enumerate(RECORD_FIELDS)}
R_MESSAGE_ID, R_PROVIDER, R_SOURCE, R_EVENT_TYPE, R_TIMESTAMP, R_RECEIVED_AT = range(6)
R_PROJECT_ID = RECORD_INDEX["project_id"]
R_USER_ID = RECORD_INDEX["user_id"]
R_REQUEST_ID = RECORD_INDEX["request_id"]
R_VM, R_HOST, R_IMAGE, R_VOLUME = (RECORD_INDEX[n] for n in ("vm_ref", "host_ref", "image_ref", "volume_ref"))
R_NETWORK, R_PORT = RECORD_INDEX["network_ref"], RECORD_INDEX["port_ref"]
R_GROUP, R_LEVEL, R_PAYLOAD = RECORD_INDEX["group"], RECORD_INDEX["level"], RECORD_INDEX["payload"]

_DECODE = object()


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message as a monitor received it, before any parsing.

    `ack_token` is opaque to the catcher (a delivery tag, a cursor position): the monitor gets it back
    in `ack(batch)` once the batch is stored.
    """

    body: bytes
    source: str = "ingest"
    ack_token: Any = None
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Event:
    message_id: str
    provider: str
    source: str
    event_type: str
    timestamp: datetime | None
    publisher_id: str | None = None
    priority: str | None = None
    project_id: str | None = None
    user_id: str | None = None
    request_id: str | None = None
    vm_ref: str | None = None
    host_ref: str | None = None
    image_ref: str | None = None
    volume_ref: str | None = None
    snapshot_ref: str | None = None
    network_ref: str | None = None
    subnet_ref: str | None = None
    port_ref: str | None = None
    router_ref: str | None = None
    floating_ip_ref: str | None = None
    security_group_ref: str | None = None
    stack_ref: str | None = None
    availability_zone: str | None = None
    group: str = "other"
    level: str = "detail"
    received_at: datetime | None = None
    payload: Any = field(default=None, compare=False)

    def refs(self) -> dict[str, str]:
        """The references this event carries, without the empty ones."""
        return {name: value for name in REF_FIELDS if (value := getattr(self, name)) is not None}

    @classmethod
    def from_record(cls, record: Record, payload: Any = _DECODE) -> Event:
        """The event a record describes; its payload text is decoded unless the caller has it already."""
        values = dict(zip(RECORD_FIELDS, record, strict=True))
        if payload is _DECODE:
            text = values["payload"]
            payload = None if text is None else orjson.loads(text)
        values["payload"] = payload
        return cls(**values)

    def to_record(self) -> Record:
        record = [getattr(self, name) for name in RECORD_FIELDS]
        record[R_PAYLOAD] = payload_text(self.payload)
        return record

    def to_json_dict(self) -> dict[str, Any]:
        """JSON view with the contract's field names; timestamps ISO 8601 with offset, null when absent."""
        out: dict[str, Any] = {}
        for name in EVENT_JSON_FIELDS:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            out[name] = value
        return out


def payload_text(payload: Any) -> str | None:
    """A payload as the JSON text the store keeps, credentials masked (Nova's select_destinations payloads
    carry the user's Keystone token in `_context.auth_token`). Decoded JSON has string keys only (the fast
    path); only a payload whose text names a secret key or holds a URL with user-info is walked."""
    if payload is None:
        return None
    option = 0
    try:
        text = orjson.dumps(payload)
    except TypeError:  # a payload built in code with int keys, say
        option = orjson.OPT_NON_STR_KEYS
        text = orjson.dumps(payload, option=option)
    if may_hold_secrets(text):
        text = orjson.dumps(mask(payload), option=option)
    return text.decode()
