"""The catcher: source-independent intake of raw messages.

size check -> decode -> filter (allow/deny) -> convert -> flood control -> one store transaction. It never
raises for bad input (that goes to the quarantine with the reason and the raw bytes); it raises
StoreUnavailable when the database cannot be written, and then the caller must not acknowledge anything.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stackwatch.config.settings import ProviderConfig
from stackwatch.events.convert import ConversionError, Converter, decode_json, parse_notification
from stackwatch.events.flood import FloodGate
from stackwatch.events.model import R_MESSAGE_ID, Event, RawMessage, Record
from stackwatch.store.events import EventStore, QuarantineItem
from stackwatch.switchboard.routes import RoutingTable

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CatchReport:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    filtered: int = 0
    collapsed: int = 0
    stored_records: list[Record] = field(default_factory=list)
    _events: list[Event] | None = field(default=None, repr=False, compare=False)

    @property
    def stored_events(self) -> list[Event]:
        """The events this batch stored, made from their records on first use (most callers only count)."""
        if self._events is None:
            self._events = [Event.from_record(record) for record in self.stored_records]
        return self._events

    def add(self, other: CatchReport) -> None:
        for name in ("received", "stored", "duplicates", "quarantined", "filtered", "collapsed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {
            name: getattr(self, name)
            for name in ("received", "stored", "duplicates", "quarantined", "filtered", "collapsed")
        }


@dataclass(slots=True)
class PreparedBatch:
    """A converted batch waiting for its transaction."""

    received: int = 0
    filtered: int = 0
    collapsed: int = 0
    records: list[Record] = field(default_factory=list)
    collapsed_into: dict[tuple[str, str], int] = field(default_factory=dict)
    quarantine: list[QuarantineItem] = field(default_factory=list)


class EventFilter:
    def __init__(self, allow: Sequence[str], deny: Sequence[str]) -> None:
        self.allow = [re.compile(p) for p in allow]
        self.deny = [re.compile(p) for p in deny]
        self.active = bool(self.allow or self.deny)
        self._verdicts: dict[str, bool] = {}  # a cloud has a few hundred event types; each is matched once

    def passes(self, event_type: str) -> bool:
        verdict = self._verdicts.get(event_type)
        if verdict is None:
            verdict = self._match(event_type)
            if len(self._verdicts) >= 4096:
                self._verdicts.clear()
            self._verdicts[event_type] = verdict
        return verdict

    def _match(self, event_type: str) -> bool:
        if self.allow and not any(p.search(event_type) for p in self.allow):
            return False
        return not any(p.search(event_type) for p in self.deny)


class Catcher:
    def __init__(self, store: EventStore, provider: ProviderConfig, routes: RoutingTable | None = None) -> None:
        self.store = store
        self.provider = provider
        self.routes = routes or RoutingTable.load()
        self.converter = Converter(self.routes)
        cfg = provider.events
        self.filter = EventFilter(cfg.filter.allow, cfg.filter.deny)
        self.max_bytes = cfg.max_event_bytes
        self.flood = FloodGate(cfg.flood.window_seconds, cfg.flood.threshold)

    def catch(self, batch: Sequence[RawMessage]) -> CatchReport:
        """Store what converts, quarantine what does not, in one transaction. Returns the counts."""
        return self.commit(self.prepare(batch))

    def prepare(self, batch: Sequence[RawMessage]) -> PreparedBatch:
        """The CPU half of `catch`: decode, filter, convert, flood control. Touches no database.

        Split from `commit` so a caller can convert batch N+1 while batch N is being written (the database
        drivers release the GIL while they wait). Call `prepare` from one thread only: flood state is ordered.
        """
        prepared = PreparedBatch(received=len(batch))
        name = self.provider.name
        now = datetime.now(UTC)
        records: list[Record] = []
        append = records.append
        convert = self.converter.record
        passes = self.filter.passes if self.filter.active else None
        max_bytes = self.max_bytes
        for message in batch:
            received_at = message.received_at or now
            body = message.body
            reason = None if len(body) <= max_bytes else self._size_reason(body)
            if reason is None:
                try:
                    doc = decode_json(body)
                    note = parse_notification(doc)
                    if passes is not None and not passes(note.event_type):
                        prepared.filtered += 1
                        continue
                    append(convert(body, name, message.source, received_at, doc=doc, note=note))
                    continue
                except ConversionError as exc:
                    reason = str(exc)
                except RecursionError:
                    reason = "JSON nested too deep"
                except Exception as exc:  # a converter bug must not stop the stream: keep the input
                    log.exception("converter failed", extra={"provider": name})
                    reason = f"converter error: {exc.__class__.__name__}: {exc}"
            prepared.quarantine.append(
                QuarantineItem(name, message.source, reason, bytes(message.body), received_at)
            )
        prepared.records, prepared.collapsed_into = self.flood.admit(records, time.monotonic())
        prepared.collapsed = len(records) - len(prepared.records)
        return prepared

    def commit(self, prepared: PreparedBatch) -> CatchReport:
        """The database half of `catch`: one transaction. Raises StoreUnavailable; then ack nothing."""
        result = self.store.write_records(
            prepared.records, collapsed=prepared.collapsed_into, quarantine=prepared.quarantine
        )
        stored_ids = set(result.stored)
        report = CatchReport(
            received=prepared.received,
            stored=len(result.stored),
            duplicates=result.duplicates,
            quarantined=len(prepared.quarantine),
            filtered=prepared.filtered,
            collapsed=prepared.collapsed,
            stored_records=_first_of_each(prepared.records, stored_ids),
        )
        if prepared.quarantine:
            log.warning(
                "quarantined %d message(s)", len(prepared.quarantine),
                extra={"provider": self.provider.name,
                       "reasons": sorted({q.reason[:120] for q in prepared.quarantine})[:5]},
            )
        return report

    def _size_reason(self, body: bytes) -> str:
        return f"event of {len(body)} bytes exceeds max_event_bytes={self.max_bytes}"


def _first_of_each(records: list[Record], stored_ids: set[str]) -> list[Record]:
    """The stored records in input order, a message repeated inside the batch once (it was stored once)."""
    out = []
    for record in records:
        message_id = record[R_MESSAGE_ID]
        if message_id in stored_ids:
            stored_ids.discard(message_id)
            out.append(record)
    return out
