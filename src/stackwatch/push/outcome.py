"""What one delivery attempt came to, whatever it delivered (a webhook POST, a refresh, a fleece, a log line).

The outbox decides the delivery's next state from it alone: `ok` -> done, `retry` -> pending again after a
back-off (or `retry_after` when the peer said how long), `final` -> dead at once (retrying the same request
cannot succeed: a 4xx, a missing secret), kept for inspection and `retry` by an operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["ok", "retry", "final"]


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    status: int | None = None  # the peer's status code, when there was an answer
    error: str | None = None  # masked text of what went wrong, or a short note of what was done
    retry_after: float | None = None  # seconds the peer asked us to wait (429/503 Retry-After)
    duration: float = 0.0  # seconds the attempt took

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"

    @classmethod
    def success(cls, note: str | None = None, status: int | None = None, duration: float = 0.0) -> Outcome:
        return cls("ok", status=status, error=note, duration=duration)
