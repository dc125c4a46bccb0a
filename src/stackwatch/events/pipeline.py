"""Pipelined catching: convert batch N+1 on this thread while batch N is written on another.

The database drivers release the GIL while SQLite or PostgreSQL work, so on two cores conversion and writing
overlap; on PostgreSQL two transactions write at once (one COPYs while the other INSERTs). At most `depth`
batches are in flight (bounded: a slow store slows the producer, nothing piles up). Results come back in
order, so a caller acknowledging its source in order stays correct.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from stackwatch.events.catcher import Catcher, CatchReport
from stackwatch.events.model import RawMessage


class PipelinedCatcher:
    def __init__(self, catcher: Catcher, depth: int | None = None, writers: int | None = None) -> None:
        """`writers` concurrent transactions (default: what the store can use); `depth` batches in flight."""
        self.catcher = catcher
        writers = writers or getattr(catcher.store, "concurrent_writers", 1)
        self.depth = max(1, depth or 2 * writers)
        self._writer = ThreadPoolExecutor(max_workers=writers, thread_name_prefix=f"store-{catcher.provider.name}")
        self._in_flight: deque[tuple[Future[CatchReport], Any]] = deque()

    def submit(self, batch: Sequence[RawMessage], token: Any = None) -> list[tuple[CatchReport, Any]]:
        """Queue a batch; returns (report, token) of the batches that finished, oldest first.

        A StoreUnavailable of a written batch is raised here, after the earlier batches were returned.
        """
        done = []
        while len(self._in_flight) >= self.depth:
            done.append(self._finish_oldest())
        prepared = self.catcher.prepare(batch)  # its flood counts land on its own records: no ordering needed
        self._in_flight.append((self._writer.submit(self.catcher.commit, prepared), token))
        return done

    def drain(self) -> list[tuple[CatchReport, Any]]:
        return [self._finish_oldest() for _ in range(len(self._in_flight))]

    def _finish_oldest(self) -> tuple[CatchReport, Any]:
        future, token = self._in_flight.popleft()
        return future.result(), token

    def close(self) -> None:
        self._writer.shutdown(wait=True)


def catch_all(
    catcher: Catcher,
    messages: Iterable[RawMessage],
    batch_size: int,
    on_batch: Callable[[CatchReport], None] | None = None,
) -> CatchReport:
    """Feed an iterable through the pipeline in batches; returns the summed report."""
    total = CatchReport()
    pipe = PipelinedCatcher(catcher)
    batch: list[RawMessage] = []

    def account(results: list[tuple[CatchReport, Any]]) -> None:
        for report, _token in results:
            report.stored_records = []  # counted, not kept: a long ingest would hold every event
            total.add(report)
            if on_batch:
                on_batch(report)

    try:
        for message in messages:
            batch.append(message)
            if len(batch) >= batch_size:
                account(pipe.submit(batch))
                batch = []
        if batch:
            account(pipe.submit(batch))
        account(pipe.drain())
    finally:
        pipe.close()
    return total
