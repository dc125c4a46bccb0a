"""Flood control: a storm of identical (event_type, ref) within a window is collapsed and counted.

The first `threshold` events of a key in a window are stored as they are; later ones within the window add
to the `collapsed_count` of an event of that key stored in the *same batch*: the last one admitted there,
or, when the batch holds none, the first over-threshold event of the batch, which is stored to carry the
count. An operator sees "x 4,000" on at most one event per batch and key, nothing is lost silently, and
the stream stays readable.

Why the anchor is always in the same batch: a count and the row it lands on then commit in one transaction.
A count aimed at an event of an earlier batch would need that batch committed first (serialising the
writers, section 6 of issue 12) and could land on nothing when that batch was retried, split, or its event
refused and quarantined. Admission is decided once per message, when the batch is prepared; retries and
splits reuse the decision (`Admission` travels with the batch), so nothing is counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stackwatch.events.model import (
    R_EVENT_TYPE,
    R_HOST,
    R_IMAGE,
    R_MESSAGE_ID,
    R_NETWORK,
    R_PORT,
    R_PROJECT_ID,
    R_PROVIDER,
    R_VM,
    R_VOLUME,
    Record,
)


def flood_key(record: Record) -> tuple[str, str]:
    ref = record[R_VM] or record[R_VOLUME] or record[R_PORT] or record[R_IMAGE] or record[R_NETWORK]
    return (record[R_EVENT_TYPE], ref or record[R_HOST] or record[R_PROJECT_ID] or "")


@dataclass(slots=True)
class Admission:
    """What flood control decided for one batch: the records to store, in input order (with the raw message
    each came from, parallel), the count each anchor carries, and the records collapsed onto each anchor
    (kept so that, if the store refuses the anchor itself, the next of them can carry the count instead)."""

    records: list[Record]
    raws: list[Any]
    collapsed: dict[tuple[str, str], int] = field(default_factory=dict)
    followers: dict[str, list[tuple[Record, Any]]] = field(default_factory=dict)
    duplicates: int = 0


class FloodGate:
    def __init__(self, window_seconds: float, threshold: int) -> None:
        self.window = window_seconds
        self.threshold = threshold
        # key -> (window start, count admitted in the window)
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}

    @property
    def active(self) -> bool:
        return self.window > 0

    def admit(self, records: list[Record], raws: list[Any], now: float) -> Admission:
        """Decide each record once: store it, or count it onto an anchor of this batch (see the module doc).

        `raws` are the messages the records came from (parallel). A collapsed record whose message_id was
        already seen in this batch is a redelivered duplicate: counted as a duplicate, not collapsed."""
        if self.window <= 0:
            return Admission(records, raws)
        windows, threshold, window = self._windows, self.threshold, self.window
        kept: list[Record] = []
        kept_raws: list[Any] = []
        anchors: dict[tuple[str, str], int] = {}  # key -> index in kept of this batch's anchor of the key
        admission = Admission(kept, kept_raws)
        seen: set[str] | None = None
        for record, raw in zip(records, raws, strict=True):
            key = flood_key(record)
            state = windows.get(key)
            if state is None or now - state[0] > window:
                state = (now, 0)
            if state[1] < threshold:
                windows[key] = (state[0], state[1] + 1)
                anchors[key] = len(kept)
                kept.append(record)
                kept_raws.append(raw)
                if seen is not None:
                    seen.add(record[R_MESSAGE_ID])
                continue
            windows[key] = state
            if seen is None:  # the first collapse in this batch: from now on, know which ids are here
                seen = {r[R_MESSAGE_ID] for r in kept}
            message_id = record[R_MESSAGE_ID]
            if message_id in seen:
                admission.duplicates += 1
                continue
            seen.add(message_id)
            index = anchors.get(key)
            if index is None:  # no event of this key stored in this batch yet: this one carries the count
                anchors[key] = len(kept)
                kept.append(record)
                kept_raws.append(raw)
                continue
            anchor = kept[index]
            target = (anchor[R_PROVIDER], anchor[R_MESSAGE_ID])
            admission.collapsed[target] = admission.collapsed.get(target, 0) + 1
            admission.followers.setdefault(anchor[R_MESSAGE_ID], []).append((record, raw))
        if len(windows) > 50_000:
            self._windows = {k: v for k, v in windows.items() if now - v[0] <= window}
        return admission

