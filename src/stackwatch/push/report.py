"""What `subscription show` and `GET /api/v1/subscriptions/NAME` say: the subscription, its deliveries by
state (backlog, done, dead), and its dead letters with every attempt (time, status or error, duration)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from stackwatch.push.outbox import Outbox
from stackwatch.push.subscriptions import SubscriptionStore

SOURCE = "subscription"


def subscription_report(engine: Engine, name: str, projects: Sequence[str] | None = None,
                        dead_limit: int = 50) -> dict[str, Any] | None:
    sub = SubscriptionStore(engine).get(name, projects)
    if sub is None:
        return None
    outbox = Outbox(engine)
    counts = outbox.counts(SOURCE).get((SOURCE, name), {})
    dead = outbox.list(source=SOURCE, owner=name, state="dead", limit=dead_limit)
    attempts = outbox.attempts(d.id for d in dead)
    return {
        **sub.to_json(),
        "deliveries": {state: counts.get(state, 0) for state in ("pending", "done", "dead")},
        "dead": [{
            "id": d.id, "message_id": d.message_id, "attempts": d.attempts, "last_status": d.last_status,
            "last_error": d.last_error, "updated_at": d.updated_at.isoformat(),
            "tries": [{"attempt": a.attempt, "at": a.started_at.isoformat(), "duration_ms": a.duration_ms,
                       "verdict": a.verdict, "status": a.status, "error": a.error} for a in attempts.get(d.id, [])],
        } for d in dead],
    }


def retry_dead(engine: Engine, name: str, extra_attempts: int | None = None) -> int:
    """Re-queue the subscription's dead letters (due now, `extra_attempts` more each: its max_attempts)."""
    sub = SubscriptionStore(engine).get(name)
    if sub is None:
        return -1
    return Outbox(engine).retry(source=SOURCE, owner=name, extra_attempts=extra_attempts or sub.max_attempts)
