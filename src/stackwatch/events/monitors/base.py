"""The monitor contract (DESIGN.md §3): what every event source plugin provides.

A monitor turns one provider's event source into batches of `RawMessage`. The runner stores each batch
through the catcher and only then calls `ack(batch)`; a monitor must never consider a message done before
that call. Monitors register under the `stackwatch.monitors` entry-point group (see `registry.py`).

The batch iterator is a plain blocking iterator rather than an async one: the clients behind the
monitors (pika, HTTP pollers) are blocking, and one thread per provider keeps receiving and writing in
a simple pipeline (see `stackwatch.events.runner`).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from stackwatch.events.model import RawMessage

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import ProviderConfig


class Availability(NamedTuple):
    """Whether a monitor can run for a provider, and why (or why not).

    `misconfigured` marks a section that is present but invalid: `auto` then refuses to fall back to a
    lower-priority monitor (a typo must not silently turn event catching off).
    """

    ok: bool
    reason: str
    misconfigured: bool = False


class MonitorConfigError(ValueError):
    """A provider's monitor section is invalid; the message names the bad key."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Messages handed over together; acknowledged together once stored.

    `seq` increases by one per batch of a monitor; `token` is the monitor's own acknowledgement handle
    (opaque to everybody else).
    """

    messages: tuple[RawMessage, ...]
    seq: int = 0
    token: Any = None

    def __len__(self) -> int:
        return len(self.messages)


class Monitor(abc.ABC):
    """One provider's event source.

    Lifecycle: `start()` once, iterate `batches()` from one thread, `ack(batch)` from that same thread
    after each batch is stored (in order), `stop()` from any thread; after `stop()` the iterator ends.
    Anything not acknowledged when the monitor stops must be delivered again by the source.
    """

    #: Entry-point name and the value of `events.monitor` that selects it.
    name: ClassVar[str] = ""
    #: `events.monitor: auto` picks the available monitor with the highest priority.
    priority: ClassVar[int] = 0

    def __init__(self, provider: ProviderConfig) -> None:
        self.provider = provider

    @classmethod
    @abc.abstractmethod
    def available(cls, provider: ProviderConfig) -> Availability:
        """Whether this monitor can serve `provider` as configured (no network I/O)."""

    @classmethod
    def probe(cls, provider: ProviderConfig) -> Availability | None:
        """Optional live check (e.g. the broker answers), shown by `stackwatch provider check`."""
        return None

    @abc.abstractmethod
    def start(self) -> None:
        """Connect and begin receiving (may return before the first connection succeeds)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop receiving; `batches()` ends soon after. Safe to call twice and from any thread."""

    @abc.abstractmethod
    def batches(self) -> Iterator[Batch]:
        """Yield batches until stopped. Blocks while nothing arrives."""

    @abc.abstractmethod
    def ack(self, batch: Batch) -> None:
        """Acknowledge a stored batch (and, in order, everything before it)."""

    def stats(self) -> dict[str, Any]:
        """Counters for logs and metrics."""
        return {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} provider={getattr(self.provider, 'name', '?')}>"
