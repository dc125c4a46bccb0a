"""Flood control: a storm of identical (event_type, ref) within a window is collapsed and counted.

The first `threshold` events of a key in a window are stored as they are; later ones within the window add
to the `collapsed_count` of the last stored event of that key, so an operator sees "x 4,000", nothing lost
silently and the stream stays readable.
"""

from __future__ import annotations

from collections.abc import Sequence

from stackwatch.events.model import Event


def flood_key(event: Event) -> tuple[str, ...]:
    ref = event.vm_ref or event.volume_ref or event.port_ref or event.image_ref or event.network_ref
    return (event.event_type, ref or event.host_ref or event.project_id or "")


class FloodGate:
    def __init__(self, window_seconds: float, threshold: int) -> None:
        self.window = window_seconds
        self.threshold = threshold
        # key -> (window start, count stored in window, message_id of the last stored event)
        self._windows: dict[tuple[str, ...], tuple[float, int, str]] = {}

    def admit(
        self, events: Sequence[Event], now: float
    ) -> tuple[list[Event], dict[tuple[str, str], int]]:
        """(events to store, {(provider, message_id of the last stored event of a key): collapsed count})."""
        if self.window <= 0:
            return list(events), {}
        kept: list[Event] = []
        collapsed: dict[tuple[str, str], int] = {}
        for ev in events:
            key = flood_key(ev)
            start, count, last_id = self._windows.get(key, (now, 0, ""))
            if now - start > self.window:
                start, count = now, 0
            if count < self.threshold:
                kept.append(ev)
                self._windows[key] = (start, count + 1, ev.message_id)
            else:
                target = (ev.provider, last_id)
                collapsed[target] = collapsed.get(target, 0) + 1
                self._windows[key] = (start, count, last_id)
        if len(self._windows) > 50_000:
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] <= self.window}
        return kept, collapsed
