"""The switchboard: stored events go through a bounded in-process queue to an ordered list of handlers.

This is the embedded default's work queue. A handler that fails is logged with the event ids and never stops
the others; a full queue blocks the catcher (back-pressure) rather than dropping events.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import Protocol

from stackwatch.events.model import Event

log = logging.getLogger(__name__)
_STOP = object()


class Handler(Protocol):
    name: str

    def handle(self, events: Sequence[Event]) -> None: ...


class Switchboard:
    def __init__(self, handlers: Sequence[Handler], max_batches: int = 64) -> None:
        self.handlers = list(handlers)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_batches)
        self._thread = threading.Thread(target=self._run, name="switchboard", daemon=True)
        self.handled = 0
        self.failures = 0

    def start(self) -> Switchboard:
        self._thread.start()
        return self

    def submit(self, events: Sequence[Event]) -> None:
        """Queue stored events for handling; blocks while the queue is full."""
        if events:
            self._queue.put(list(events))

    def stop(self, timeout: float = 10.0) -> None:
        """Handle what is queued, then stop."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)
        for handler in self.handlers:
            close = getattr(handler, "close", None)
            if close:
                close()

    def join(self) -> None:
        """Wait until every queued batch went through every handler (tests, CLI ingest)."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._dispatch(item)  # type: ignore[arg-type]
            finally:
                self._queue.task_done()

    def _dispatch(self, events: list[Event]) -> None:
        for handler in self.handlers:
            try:
                handler.handle(events)
            except Exception:  # one handler's bug must not starve the others
                self.failures += 1
                log.exception(
                    "handler failed",
                    extra={"handler": handler.name, "events": [e.message_id for e in events[:20]]},
                )
        self.handled += len(events)
