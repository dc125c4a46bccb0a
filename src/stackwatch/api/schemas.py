"""Response models of the API: what each route returns, with examples, so the OpenAPI document describes the
answers exactly (`/docs`, clients generated from it, and the schemathesis run in tests/api that checks every
answer against it).

The event model is built from the event contract's field list (events.model.EVENT_JSON_FIELDS), so a field
added there appears here without a second list to keep in step.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from stackwatch.events.model import EVENT_JSON_FIELDS

EVENT_EXAMPLE: dict[str, Any] = {
    "message_id": "502d7457-7c67-44f8-bce3-24be092974d2", "provider": "lab", "source": "amqp",
    "event_type": "compute.instance.create.end", "timestamp": "2026-11-22T02:02:49.708327+00:00",
    "received_at": "2026-11-22T02:02:49.912000+00:00", "publisher_id": "compute.cmp-1", "priority": "INFO",
    "project_id": "6f70656e737461636b20342065766572", "user_id": "fake-user", "request_id": "req-1",
    "vm_ref": "178b0921-8f85-4257-88b6-2e743b5a975c", "host_ref": "cmp-1", "image_ref": None, "volume_ref": None,
    "snapshot_ref": None, "network_ref": None, "subnet_ref": None, "port_ref": None, "router_ref": None,
    "floating_ip_ref": None, "security_group_ref": None, "stack_ref": None, "availability_zone": "nova",
    "group": "creation", "level": "summary", "payload": {"state": "active"}, "collapsed_count": 0,
}

_event_fields: dict[str, Any] = {
    name: ((Any, None) if name == "payload" else (str, ...) if name in ("message_id", "provider", "source",
                                                                         "event_type", "group", "level")
           else (str | None, None))
    for name in EVENT_JSON_FIELDS
}
Event = create_model(  # type: ignore[call-overload]
    "Event",
    __config__=ConfigDict(json_schema_extra={"examples": [EVENT_EXAMPLE]}),
    __doc__="One canonical event (docs/events.md): the contract's fields, then how many identical events flood "
            "control counted onto it.",
    **_event_fields,
    collapsed_count=(int, 0),  # after the contract's fields: the order `to_json_dict` gives them
)


class Change(BaseModel):
    """One inventory change: created (changes = the kept fields), updated ({field: [old, new]}), deleted, restored."""

    at: str | None
    provider: str
    kind: str
    uid: str
    action: str
    changes: dict[str, Any] | None = None
    refresh_id: int | None = None


class Timeline(BaseModel):
    """Events of a VM, host, project or provider (oldest first), counts per group, and a VM's changes."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "vm": EVENT_EXAMPLE["vm_ref"], "groups": {"creation": 1}, "events": [EVENT_EXAMPLE],
        "changes": [{"at": "2026-11-22T02:03:10+00:00", "provider": "lab", "kind": "servers",
                     "uid": EVENT_EXAMPLE["vm_ref"], "action": "created", "changes": {"name": "web"},
                     "refresh_id": 7}],
    }]})

    vm: str | None
    groups: dict[str, int]
    events: list[Event]  # type: ignore[valid-type]
    changes: list[Change]


class Quarantined(BaseModel):
    """Input that could not become an event, kept whole for inspection (the raw bytes stay in the store)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 3, "provider": "lab", "source": "amqp", "received_at": "2026-11-22T02:02:50+00:00",
        "reason": "not JSON: unexpected character", "size": 8, "sha256": "9f86d081884c7d65" + "0" * 48}]})

    id: int
    provider: str
    source: str
    received_at: Any = Field(description="ISO 8601 time")
    reason: str
    size: int
    sha256: str


class Caller(BaseModel):
    """Who the request's token stands for."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "keystone:alice", "role": "viewer", "project_id": "6f70656e737461636b20342065766572"}]})

    name: str
    role: str
    project_id: str | None = Field(None, description="None: every project (admins)")


class Error(BaseModel):
    """An error: what went wrong, for a person."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"detail": "invalid, expired or revoked token"}]})

    detail: Any


#: the error answers every authenticated route may give, for its `responses=`
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Error, "description": "no token, or an unknown, expired or revoked one"},
    403: {"model": Error, "description": "the token's role may not do this"},
    503: {"model": Error, "description": "the database or Keystone does not answer"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Error, "description": "absent, or not yours to see"}}
#: what a route that creates or changes something may refuse besides (a clash, a body that does not validate)
INVALID: dict[int | str, dict[str, Any]] = {
    409: {"model": Error, "description": "it clashes with what exists (a name taken)"},
    422: {"model": Error, "description": "the request does not validate; the detail names the field"},
}
