"""Schemas of the HTTP monitors' sections: `events.panko`, `events.http` and `events.ceilometer_http`.

Each monitor validates its own section here (the settings layer keeps them raw); unknown keys are refused
and every error names the key, e.g. `events.panko.page_size: ...`.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stackwatch.events.monitors.sections import parse_section


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PankoConfig(_Section):
    """`events.panko`: Panko 10 / Ceilometer v2 event API, polled."""

    #: default: the `event` service in the provider cloud's Keystone catalog
    endpoint: str | None = None
    #: keystone: token from the provider's cloud; none: `headers` only (a noauth Panko)
    auth: Literal["keystone", "none"] = "keystone"
    headers: dict[str, str] = Field(default_factory=dict)
    interface: str | None = None
    interval_seconds: float = Field(15.0, gt=0, le=86_400)
    page_size: int = Field(100, ge=1, le=10_000)
    all_tenants: bool = True
    read_back_seconds: float = Field(5.0, ge=0, le=86_400)
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    #: re-reads of an event Panko returned without traits before it is taken as it is
    traitless_retries: int = Field(3, ge=0, le=100)


class HttpConfig(_Section):
    """`events.http`: any JSON event service, polled (ManageIQ's http monitor)."""

    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    auth: Literal["keystone", "basic", "none"] = "none"
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    #: fixed query parameters sent with every request (a list repeats the parameter)
    params: dict[str, str | list[str]] = Field(default_factory=dict)
    #: dotted path of the list of events in the response ("" : the response is the list)
    items: str = ""
    message_id: str = "message_id"
    event_type: str = "event_type"
    timestamp: str = "timestamp"
    #: "" : the whole item is the payload
    payload: str = ""
    #: fields: build {message_id, event_type, timestamp, payload} from the fields above; as_is: each item is
    #: already a notification or a Panko event and goes to the catcher's converters unchanged
    item_format: Literal["fields", "as_is"] = "fields"
    #: how to ask for what comes next: a query parameter fed by the newest item's field, or a link
    cursor: Literal["param", "next_link", "none"] = "param"
    cursor_param: str = "marker"
    #: the item field that feeds `cursor_param` (e.g. the id a `marker` means)
    cursor_field: str = "id"
    #: which item feeds the cursor: the page's last one (ascending order) or the largest value (any order)
    cursor_from: Literal["last", "max"] = "last"
    #: dotted path of the next page's link in the response (cursor: next_link)
    next_link: str = "links.next"
    page_size: int = Field(100, ge=1, le=10_000)
    page_size_param: str | None = "limit"
    interval_seconds: float = Field(15.0, gt=0, le=86_400)
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    #: keystone auth only: the catalog's service type the `url` is relative to ("" : `url` is absolute)
    service_type: str = ""
    interface: str | None = None

    @model_validator(mode="after")
    def _checks(self) -> HttpConfig:
        if self.auth == "basic" and not (self.username and (self.password or self.password_env)):
            raise ValueError("auth basic needs username and password (or password_env)")
        if not self.service_type and not self.url.startswith(("http://", "https://")):
            raise ValueError("url: must start with http:// or https:// (or set service_type with auth keystone)")
        return self

    def basic_password(self) -> str | None:
        return _password(self.password, self.password_env)


class CeilometerHttpConfig(_Section):
    """`events.ceilometer_http`: the receiver of Ceilometer's `http://` event publisher."""

    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    #: seconds a POST waits for its events to be stored before it answers 503
    store_timeout_seconds: float = Field(10.0, gt=0, le=300)
    #: bodies larger than this are refused (413) and the first bytes quarantined
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    #: events stored together (one transaction) when POSTs arrive at once
    batch_size: int = Field(500, ge=1, le=50_000)
    #: event type given to `raw_only=True` payloads, which carry none (`?event_type=` on the URL overrides)
    raw_only_event_type: str = "ceilometer.raw_payload"

    @model_validator(mode="after")
    def _checks(self) -> CeilometerHttpConfig:
        if bool(self.username) != bool(self.password or self.password_env):
            raise ValueError("username and password (or password_env) go together")
        return self

    def basic_password(self) -> str | None:
        return _password(self.password, self.password_env)


def _password(password: str | None, env: str | None) -> str | None:
    if password:
        return password
    return os.environ.get(env) if env else None


__all__ = ["CeilometerHttpConfig", "HttpConfig", "PankoConfig", "parse_section"]
