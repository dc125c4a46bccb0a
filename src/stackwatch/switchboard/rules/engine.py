"""Evaluation: which rules an event matches. Candidates are found per (provider, event type) once and cached
(globs and policy names depend on nothing else), so an event costs one dictionary lookup plus the conditions
of the few rules that want its type; 100 rules cost about what 3 do."""

from __future__ import annotations

from collections.abc import Sequence

from stackwatch.events.model import Event
from stackwatch.switchboard.routes import RoutingTable
from stackwatch.switchboard.rules.model import Rule


class RuleSet:
    """An immutable set of rules with a candidate cache; a reload builds a new RuleSet."""

    def __init__(self, rules: Sequence[Rule], routes: RoutingTable) -> None:
        self.rules = tuple(rules)
        self.by_name = {r.name: r for r in self.rules}
        self.routes = routes
        self._candidates: dict[tuple[str, str], tuple[Rule, ...]] = {}

    def candidates(self, provider: str, event_type: str) -> tuple[Rule, ...]:
        key = (provider, event_type)
        found = self._candidates.get(key)
        if found is None:
            policy = self.routes.route(event_type).policy
            found = tuple(r for r in self.rules if r.wants(provider, event_type, policy))
            if len(self._candidates) > 50_000:
                self._candidates.clear()
            self._candidates[key] = found
        return found

    def matching(self, event: Event) -> list[Rule]:
        return [r for r in self.candidates(event.provider, event.event_type) if r.test(event)]

    def explain(self, rule: Rule, event: Event) -> tuple[bool, str]:
        """(matched, why): for `rules test`."""
        policy = self.routes.route(event.event_type).policy
        if not rule.enabled:
            return False, "the rule is disabled"
        if rule.providers is not None and event.provider not in rule.providers:
            return False, f"provider {event.provider!r} is not one of {sorted(rule.providers)}"
        if not rule.wants(event.provider, event.event_type, policy):
            return False, (f"event type {event.event_type!r} (policy event {policy or 'none'}) matches neither "
                           f"events {list(rule.events)} nor policy {sorted(rule.policies)}")
        if not rule.test(event):
            return False, "the `when` conditions are false for this event"
        return True, "matched"
