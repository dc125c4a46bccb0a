"""The canonical event (DESIGN.md §2) and the raw message a monitor hands to the catcher.

Both are frozen dataclasses: an event is a fact, nothing downstream may edit it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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

    def to_json_dict(self) -> dict[str, Any]:
        """JSON view with the contract's field names; timestamps ISO 8601 with offset, null when absent."""
        out: dict[str, Any] = {}
        for name in EVENT_JSON_FIELDS:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            out[name] = value
        return out
