"""Schema of a provider's `events.amqp` section (the AMQP monitor validates its own section).

Unknown keys are rejected and every error names the key, e.g. `events.amqp.prefetch: ...`.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stackwatch.events.monitors.base import MonitorConfigError  # noqa: F401 - re-exported, callers import it here
from stackwatch.events.monitors.sections import parse_section
from stackwatch.masking import mask_url

#: Exchanges OpenStack services publish notifications on (oslo's `control_exchange` per service).
DEFAULT_EXCHANGES: tuple[str, ...] = (
    "nova", "neutron", "cinder", "openstack", "glance", "heat", "keystone", "ironic",
)
#: oslo.messaging topics: legacy (`notifications`) and nova's versioned notifications.
DEFAULT_TOPICS: tuple[str, ...] = ("notifications", "versioned_notifications")
#: oslo routing keys are `<topic>.<priority in lower case>`; `<topic>.*` covers them on a topic exchange,
#: these explicit keys cover an exchange somebody declared with another type (direct).
PRIORITIES: tuple[str, ...] = ("audit", "debug", "info", "warn", "warning", "error", "critical", "sample")
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"

_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,255}$")


class AmqpTLS(BaseModel):
    """TLS options (an `amqps://` URL turns TLS on with the system's CAs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True
    server_hostname: str | None = None


class AmqpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    urls: list[str] = Field(default_factory=lambda: [DEFAULT_URL], min_length=1)
    vhost: str | None = None
    exchanges: list[str] = Field(default_factory=lambda: list(DEFAULT_EXCHANGES), min_length=1)
    topics: list[str] = Field(default_factory=lambda: list(DEFAULT_TOPICS), min_length=1)
    #: default `stackwatch-<provider>`
    queue: str | None = None
    queue_type: Literal["classic", "quorum"] = "classic"
    #: oslo declares exchanges non-durable unless `amqp_durable_queues` is set; match the cloud.
    durable_exchanges: bool = False
    batch_size: int = Field(1000, ge=1, le=50_000)
    flush_ms: float = Field(10.0, gt=0, le=60_000)
    #: unacknowledged messages the broker may send us; default 6 x batch_size: the pipeline holds a batch
    #: being written, one waiting for the writer, one being converted, one handed over and one filling.
    prefetch: int | None = Field(None, ge=1, le=65_535)
    heartbeat: int = Field(30, ge=0, le=3600)
    connect_timeout: float = Field(5.0, gt=0)
    reconnect_min: float = Field(0.25, gt=0)
    reconnect_max: float = Field(3.0, gt=0)
    tls: AmqpTLS = Field(default_factory=AmqpTLS)
    #: decode deliveries with `amqp_deliveries` (CPU per message 29-42 -> 8-11 us) instead of pika's own
    #: frame objects; `false` falls back to plain pika, e.g. after a pika upgrade changed its internals.
    fast_deliveries: bool = True

    @field_validator("urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            scheme = urlsplit(url).scheme.lower()
            if scheme not in ("amqp", "amqps"):
                raise ValueError(f"{mask_url(url)}: scheme must be amqp:// or amqps://")
            parts = urlsplit(url)
            try:
                parts.port  # noqa: B018 - parsing it is the check
            except ValueError:  # its message would quote what it read as a port: part of a password, maybe
                raise ValueError(
                    f"{mask_url(url)}: cannot read the host and port; percent-encode '/', '?' and '#' in the "
                    "user name and password"
                ) from None
            if not parts.hostname:
                raise ValueError(f"{mask_url(url)}: no host")
        return urls

    @field_validator("exchanges", "topics")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _NAME.match(name):
                raise ValueError(f"{name!r} is not a valid AMQP name")
        return names

    @model_validator(mode="after")
    def _checks(self) -> AmqpConfig:
        if self.queue is not None:
            if not _NAME.match(self.queue):
                raise ValueError(f"queue: {self.queue!r} is not a valid AMQP name")
            shared = {f"{t}.{p}" for t in self.topics for p in PRIORITIES}
            if self.queue in shared:
                raise ValueError(
                    f"queue: {self.queue!r} is oslo's shared notification queue (Ceilometer consumes it);"
                    " stackwatch needs a queue of its own, e.g. stackwatch-<provider>"
                )
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must be >= reconnect_min")
        if self.prefetch is not None and self.prefetch < self.batch_size:
            raise ValueError(f"prefetch ({self.prefetch}) must be >= batch_size ({self.batch_size})")
        return self

    @property
    def effective_prefetch(self) -> int:
        return self.prefetch if self.prefetch is not None else min(6 * self.batch_size, 65_535)

    def queue_name(self, provider: str) -> str:
        return self.queue or f"stackwatch-{provider}"


def parse_amqp_section(section: dict[str, Any] | None, where: str = "events.amqp") -> AmqpConfig:
    """Validate a raw `events.amqp` mapping; errors name the offending key."""
    return parse_section(AmqpConfig, section, where)
