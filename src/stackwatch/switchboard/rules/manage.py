"""What `stackwatch rules ...` and `/api/v1/rules` do, in one place: list, show, add, remove, test, runs, retry.

Both front ends call these and only format the result, so the CLI and the API cannot disagree. Nothing here
returns a secret: targets are masked, webhook headers are shown as sent except the signature, which `test`
computes only when the variable is set in this process and shows as computed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from stackwatch.config.settings import Settings
from stackwatch.events.model import Event
from stackwatch.masking import mask, mask_url
from stackwatch.push.outbox import Outbox
from stackwatch.push.signing import HEADER, signature
from stackwatch.switchboard.routes import RoutingTable
from stackwatch.switchboard.rules.audit import RuleAudit, delivery_json
from stackwatch.switchboard.rules.engine import RuleSet
from stackwatch.switchboard.rules.model import Rule, RuleError
from stackwatch.switchboard.rules.rulesfile import add_rules, read_rules, remove_rule, rules_path


def rule_summary(rule: Rule) -> dict[str, Any]:
    return {"name": rule.name, "enabled": rule.enabled, "providers": sorted(rule.providers or []) or None,
            "events": list(rule.events), "policy": sorted(rule.policies),
            "throttle": ({"once_within_seconds": rule.throttle.once_within, "group_by": list(rule.throttle.group_by)}
                         if rule.throttle else None),
            "actions": [a.kind for a in rule.actions], "description": rule.description}


class RulesAdmin:
    def __init__(self, settings: Settings, engine: Engine, routes: RoutingTable) -> None:
        self.settings = settings
        self.path = rules_path(settings)
        self.engine = engine
        self.routes = routes
        self.outbox = Outbox(engine)
        self.audit = RuleAudit(engine, self.outbox)

    def rules(self) -> list[Rule]:
        return read_rules(self.path)

    def get(self, name: str) -> Rule:
        for rule in self.rules():
            if rule.name == name:
                return rule
        raise RuleError(f"no rule {name!r} in {self.path}")

    def list(self) -> list[dict[str, Any]]:
        matches = self.audit.match_counts()
        counts = self.outbox.counts(source="rule")
        out = []
        for rule in self.rules():
            states = counts.get(("rule", rule.name), {})
            n, throttled = matches.get(rule.name, (0, 0))
            out.append({**rule_summary(rule), "matches": n, "throttled": throttled,
                        "pending": states.get("pending", 0), "done": states.get("done", 0),
                        "dead": states.get("dead", 0)})
        return out

    def show(self, name: str, limit: int = 20) -> dict[str, Any]:
        rule = self.get(name)
        return {**rule_summary(rule), "document": mask(rule.document),
                "recent_matches": self.audit.matches_of_rule(name, limit)}

    def add(self, specs: list[Mapping[str, Any]], replace: bool = False) -> list[str]:
        return [r.name for r in add_rules(self.path, list(specs), replace=replace)]

    def remove(self, name: str) -> None:
        remove_rule(self.path, name)

    def convert(self, notification: Any, provider: str | None = None) -> Event:
        """A notification (any shape `events ingest` takes) as the canonical event; ValueError when it is not one."""
        import orjson

        from stackwatch.events.convert import Converter

        body = notification if isinstance(notification, bytes) else orjson.dumps(notification)
        name = provider or (self.settings.providers[0].name if self.settings.providers else "default")
        try:
            return Converter(self.routes).convert(body, name, "ingest")
        except Exception as exc:  # noqa: BLE001 - every conversion failure is the caller's bad input
            raise ValueError(str(exc)) from exc

    def test(self, name: str, event: Event) -> dict[str, Any]:
        """Whether `name` matches `event` and what each action would send, without sending anything."""
        rule = self.get(name)
        matched, why = RuleSet([rule], self.routes).explain(rule, event)
        actions = []
        for action in rule.actions if matched else ():
            plan = action.type.plan(rule.name, action.options, event)
            item: dict[str, Any] = {"action": action.index, "kind": plan.kind, "target": plan.target,
                                    "max_attempts": action.max_attempts}
            spec = dict(plan.spec)
            if plan.kind == "webhook":
                headers = dict(spec.get("headers") or {})
                secret_env = spec.get("secret_env")
                if secret_env and os.environ.get(secret_env):
                    headers[HEADER] = signature(plan.body or b"", os.environ[secret_env])
                elif secret_env:
                    headers[HEADER] = f"(computed from ${secret_env} when sent; not set here)"
                item.update(url=mask_url(spec["url"]), headers=headers,
                            body=(plan.body or b"").decode("utf-8", "replace"))
            else:
                item["spec"] = mask(spec)
            actions.append(item)
        return {"rule": rule.name, "message_id": event.message_id, "event_type": event.event_type,
                "matched": matched, "why": why, "actions": actions}

    def runs(self, rule: str | None = None, failed: bool = False, message_id: str | None = None,
             limit: int = 50) -> list[dict[str, Any]]:
        deliveries = self.outbox.list(source="rule", owner=rule, state="dead" if failed else None,
                                      message_id=message_id, limit=limit)
        attempts = self.outbox.attempts(d.id for d in deliveries)
        return [delivery_json(d, attempts.get(d.id, [])) for d in deliveries]

    def retry(self, rule: str | None = None, ids: list[int] | None = None) -> int:
        return self.outbox.retry(source="rule", owner=rule, ids=ids or None)

    def event_matches(self, message_id: str, provider: str | None = None) -> list[dict[str, Any]]:
        return self.audit.matches_of_event(message_id, provider)


def event_rules(engine: Engine, message_id: str, provider: str | None = None) -> list[dict[str, Any]]:
    """The rules an event matched, with each action's deliveries and attempts (`events show`, the API)."""
    return RuleAudit(engine, Outbox(engine)).matches_of_event(message_id, provider)
