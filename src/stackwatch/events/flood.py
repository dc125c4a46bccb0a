"""Flood control: a storm of identical (event_type, ref) within a window is collapsed and counted.

The first `threshold` events of a key in a window are stored as they are; later ones within the window add
to the `collapsed_count` of the last stored event of that key, so an operator sees "x 4,000", nothing lost
silently and the stream stays readable.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def flood_key(record: Record) -> tuple[str, ...]:
    ref = record[R_VM] or record[R_VOLUME] or record[R_PORT] or record[R_IMAGE] or record[R_NETWORK]
    return (record[R_EVENT_TYPE], ref or record[R_HOST] or record[R_PROJECT_ID] or "")


class FloodGate:
    def __init__(self, window_seconds: float, threshold: int) -> None:
        self.window = window_seconds
        self.threshold = threshold
        # key -> (window start, count stored in window, message_id of the last stored event)
        self._windows: dict[tuple[str, ...], tuple[float, int, str]] = {}

    def admit(
        self, records: Sequence[Record], now: float
    ) -> tuple[list[Record], dict[tuple[str, str], int]]:
        """(records to store, {(provider, message_id of the last stored event of a key): collapsed count})."""
        if self.window <= 0:
            return list(records), {}
        kept: list[Record] = []
        collapsed: dict[tuple[str, str], int] = {}
        for ev in records:
            key = flood_key(ev)
            start, count, last_id = self._windows.get(key, (now, 0, ""))
            if now - start > self.window:
                start, count = now, 0
            if count < self.threshold:
                kept.append(ev)
                self._windows[key] = (start, count + 1, ev[R_MESSAGE_ID])
            else:
                target = (ev[R_PROVIDER], last_id)
                collapsed[target] = collapsed.get(target, 0) + 1
                self._windows[key] = (start, count, last_id)
        if len(self._windows) > 50_000:
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] <= self.window}
        return kept, collapsed
