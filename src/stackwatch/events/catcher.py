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
from stackwatch.events.model import R_MESSAGE_ID, R_PROVIDER, Event, RawMessage, Record
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
    """A converted batch waiting for its transaction; flood control has decided each message already.

    Retrying a batch commits the same `PreparedBatch` again, and splitting one (to isolate a message the
    store refuses) divides it with `split`: nothing is converted or admitted twice. Each collapsed count
    travels with its anchor record, and the records collapsed onto it with it (`followers`)."""

    received: int = 0
    filtered: int = 0
    collapsed: int = 0
    duplicates: int = 0
    records: list[Record] = field(default_factory=list)
    collapsed_into: dict[tuple[str, str], int] = field(default_factory=dict)
    quarantine: list[QuarantineItem] = field(default_factory=list)
    #: the raw message of each record (parallel to `records`): what the quarantine keeps if one is refused
    raws: list[RawMessage] = field(default_factory=list)
    #: anchor message_id -> the (record, raw message) pairs counted onto it
    followers: dict[str, list[tuple[Record, RawMessage]]] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Units a split can separate: records (each with its followers) and quarantine items."""
        return len(self.records) + len(self.quarantine)

    def split(self) -> list[PreparedBatch]:
        """Two parts that together store exactly what this one does: the quarantine apart from the records
        first, then the records in halves, each anchor with its count and followers."""
        if self.records and self.quarantine:
            return [self._part(self.records, self.raws, [], first=True),
                    self._part([], [], self.quarantine, first=False)]
        if len(self.records) > 1:
            half = len(self.records) // 2
            return [self._part(self.records[:half], self.raws[:half], [], first=True),
                    self._part(self.records[half:], self.raws[half:], [], first=False)]
        if len(self.quarantine) > 1:
            half = len(self.quarantine) // 2
            return [self._part([], [], self.quarantine[:half], first=True),
                    self._part([], [], self.quarantine[half:], first=False)]
        raise ValueError("a batch of one cannot be split")

    def _part(self, records: list[Record], raws: list[RawMessage], quarantine: list[QuarantineItem],
              first: bool) -> PreparedBatch:
        collapsed: dict[tuple[str, str], int] = {}
        followers: dict[str, list[tuple[Record, RawMessage]]] = {}
        if self.collapsed_into:
            for record in records:
                target = (record[R_PROVIDER], record[R_MESSAGE_ID])
                count = self.collapsed_into.get(target)
                if count:
                    collapsed[target] = count
                    followers[target[1]] = self.followers.get(target[1], [])
        return PreparedBatch(
            received=self.received if first else 0, filtered=self.filtered if first else 0,
            duplicates=self.duplicates if first else 0, collapsed=sum(collapsed.values()),
            records=records, collapsed_into=collapsed, quarantine=quarantine, raws=raws, followers=followers,
        )


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
        raws: list[RawMessage] = []
        append, append_raw = records.append, raws.append
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
                    append_raw(message)
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
        admission = self.flood.admit(records, raws, time.monotonic())
        prepared.records, prepared.raws = admission.records, admission.raws
        prepared.collapsed_into, prepared.followers = admission.collapsed, admission.followers
        prepared.collapsed = sum(admission.collapsed.values())
        prepared.duplicates = admission.duplicates
        return prepared

    def refused_alone(self, prepared: PreparedBatch, error: BaseException) -> PreparedBatch:
        """What to write instead of a one-record batch the store keeps refusing: its message in the quarantine
        (whole, with the error), and, when flood control had counted others onto it, the next of those
        stored in its place carrying the rest of the count, so the refusal of one loses none of them."""
        if len(prepared.records) != 1 or prepared.quarantine:
            raise ValueError("refused_alone takes a batch of exactly one record")
        record, raw = prepared.records[0], prepared.raws[0]
        reason = f"store refused this event: {type(error).__name__}: {str(error)[:500]}"
        received_at = raw.received_at or datetime.now(UTC)
        item = QuarantineItem(self.provider.name, raw.source, reason, bytes(raw.body), received_at)
        log.error("catcher %s: %s (quarantined)", self.provider.name, reason)
        after = PreparedBatch(received=prepared.received, filtered=prepared.filtered,
                              duplicates=prepared.duplicates, quarantine=[item])
        followers = prepared.followers.get(record[R_MESSAGE_ID], [])
        if followers:
            (heir, heir_raw), rest = followers[0], followers[1:]
            after.records, after.raws = [heir], [heir_raw]
            if rest:
                after.collapsed_into = {(heir[R_PROVIDER], heir[R_MESSAGE_ID]): len(rest)}
                after.followers = {heir[R_MESSAGE_ID]: rest}
                after.collapsed = len(rest)
        return after

    def commit(self, prepared: PreparedBatch) -> CatchReport:
        """The database half of `catch`: one transaction. Raises StoreUnavailable; then ack nothing."""
        result = self.store.write_records(
            prepared.records, collapsed=prepared.collapsed_into, quarantine=prepared.quarantine
        )
        stored_ids = set(result.stored)
        report = CatchReport(
            received=prepared.received,
            stored=len(result.stored),
            duplicates=result.duplicates + prepared.duplicates,
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
