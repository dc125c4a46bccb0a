"""Recording what rules decided: matches (throttled or not), throttle state and the actions' deliveries, all
in one transaction per batch, and reading it back for `events show`, `rules runs` and the API.

Once per (rule, event): a match already recorded (a batch replayed after a crash) is skipped whole, so its
throttle is not consulted again and its actions are not enqueued again (the outbox's key would refuse them
anyway). Throttles run on event time (the event's timestamp, else when it was received), so a replay decides
as the first pass did, and the last firing per (rule, group) is kept in `rule_throttles` across restarts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from stackwatch.events.model import Event
from stackwatch.push.outbox import Delivery, NewDelivery, Outbox
from stackwatch.store.deliveries import RuleMatchRow, RuleThrottleRow
from stackwatch.switchboard.rules.model import Rule

Planner = Callable[[Rule, Event], list[NewDelivery]]
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Decision:
    rule: str
    message_id: str
    throttled: bool
    actions: int


def event_time(event: Event) -> datetime:
    return event.timestamp or event.received_at or datetime.now(UTC)


class RuleAudit:
    """The rule tables of one store, with an in-process cache of throttle firings (this process holds the
    partition, so it is the only writer of its rules' firings while it does)."""

    def __init__(self, engine: Engine, outbox: Outbox) -> None:
        self.engine = engine
        self.outbox = outbox
        dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert_match = dialect.insert(RuleMatchRow).on_conflict_do_nothing(
            index_elements=["rule", "provider", "message_id"])
        upsert = dialect.insert(RuleThrottleRow)
        self._upsert_throttle = upsert.on_conflict_do_update(
            index_elements=["rule", "group_key"], set_={"fired_at": upsert.excluded.fired_at})
        self._fired: dict[tuple[str, str], datetime] = {}

    def _known(self, conn: Any, provider: str, pairs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        mids = sorted({m for _, m in pairs})
        for i in range(0, len(mids), _CHUNK):
            rows = conn.execute(select(RuleMatchRow.rule, RuleMatchRow.message_id).where(
                RuleMatchRow.provider == provider, RuleMatchRow.message_id.in_(mids[i:i + _CHUNK])))
            found.update((r, m) for r, m in rows)
        return found

    def _load_fired(self, conn: Any, keys: Iterable[tuple[str, str]]) -> None:
        missing = [k for k in set(keys) if k not in self._fired]
        for i in range(0, len(missing), _CHUNK):
            part = missing[i:i + _CHUNK]
            for rule, key, at in conn.execute(select(RuleThrottleRow.rule, RuleThrottleRow.group_key,
                                                     RuleThrottleRow.fired_at)
                                              .where(tuple_(RuleThrottleRow.rule, RuleThrottleRow.group_key)
                                                     .in_(part))):
                self._fired[(rule, key)] = at

    def record(self, provider: str, matches: Sequence[tuple[Rule, Event]], planner: Planner) -> list[Decision]:
        """Record new matches of one provider's batch, decide throttles and enqueue their actions, atomically;
        returns the decisions taken now (matches recorded before are left out)."""
        if not matches:
            return []
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            known = self._known(conn, provider, [(r.name, e.message_id) for r, e in matches])
            fresh = [(r, e) for r, e in matches if (r.name, e.message_id) not in known]
            throttled_keys = {(r.name, r.throttle.key(e)) for r, e in fresh if r.throttle}
            self._load_fired(conn, throttled_keys)
            fired = dict(self._fired)
            changed: dict[tuple[str, str], datetime] = {}
            rows, deliveries, decisions = [], [], []
            seen: set[tuple[str, str]] = set()
            for rule, event in fresh:
                if (rule.name, event.message_id) in seen:
                    continue
                seen.add((rule.name, event.message_id))
                throttled = False
                if rule.throttle is not None:
                    key = (rule.name, rule.throttle.key(event))
                    at = event_time(event)
                    last = fired.get(key)
                    if last is not None and abs((at - last).total_seconds()) < rule.throttle.once_within:
                        throttled = True
                    else:
                        fired[key] = changed[key] = at
                planned = [] if throttled else planner(rule, event)
                deliveries += planned
                rows.append({"rule": rule.name, "provider": provider, "message_id": event.message_id,
                             "event_id": None, "event_type": event.event_type, "matched_at": now,
                             "throttled": throttled, "actions": len(planned)})
                decisions.append(Decision(rule.name, event.message_id, throttled, len(planned)))
            if rows:
                conn.execute(self._insert_match, rows)
            if changed:
                conn.execute(self._upsert_throttle, [{"rule": r, "group_key": k, "fired_at": at}
                                                     for (r, k), at in changed.items()])
            self.outbox.enqueue(deliveries, conn=conn)
        self._fired.update(changed)  # only once committed
        return decisions

    # -- reading ---------------------------------------------------------------------------------------------

    def matches_of_event(self, message_id: str, provider: str | None = None) -> list[dict[str, Any]]:
        """The rules an event matched, each with its actions' deliveries and their attempts."""
        query = select(RuleMatchRow).where(RuleMatchRow.message_id == message_id).order_by(RuleMatchRow.id)
        if provider:
            query = query.where(RuleMatchRow.provider == provider)
        with self.engine.connect() as conn:
            matches = conn.execute(query).all()
        deliveries = self.outbox.list(source="rule", message_id=message_id, limit=1000, newest_first=False)
        attempts = self.outbox.attempts(d.id for d in deliveries)
        out = []
        for m in matches:
            mine = [d for d in deliveries if d.owner == m.rule]
            out.append({"rule": m.rule, "provider": m.provider, "matched_at": m.matched_at.isoformat(),
                        "throttled": m.throttled,
                        "actions": [delivery_json(d, attempts.get(d.id, [])) for d in mine]})
        return out

    def matches_of_rule(self, rule: str, limit: int = 50) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(RuleMatchRow).where(RuleMatchRow.rule == rule)
                                .order_by(RuleMatchRow.id.desc()).limit(limit)).all()
        return [{"message_id": r.message_id, "provider": r.provider, "event_type": r.event_type,
                 "matched_at": r.matched_at.isoformat(), "throttled": r.throttled, "actions": r.actions}
                for r in rows]

    def match_counts(self) -> dict[str, tuple[int, int]]:
        """{rule: (matches, throttled)}."""
        from sqlalchemy import case, func

        query = select(RuleMatchRow.rule, func.count(), func.sum(case((RuleMatchRow.throttled, 1), else_=0))
                       ).group_by(RuleMatchRow.rule)
        with self.engine.connect() as conn:
            return {r: (int(n), int(t or 0)) for r, n, t in conn.execute(query)}


def delivery_json(d: Delivery, attempts: Sequence[Any] = ()) -> dict[str, Any]:
    """A delivery as `rules runs`, `events show` and the API show it (target masked, no body)."""
    return {
        "id": d.id, "rule": d.owner, "action": d.action_index, "kind": d.kind, "target": d.target,
        "message_id": d.message_id, "state": d.state, "attempts": d.attempts, "max_attempts": d.max_attempts,
        "last_status": d.last_status, "last_error": d.last_error, "created_at": d.created_at.isoformat(),
        "next_attempt_at": d.next_attempt_at.isoformat() if d.state == "pending" else None,
        "history": [{"attempt": a.attempt, "at": a.started_at.isoformat(), "duration_ms": a.duration_ms,
                     "verdict": a.verdict, "status": a.status, "error": a.error} for a in attempts],
    }
