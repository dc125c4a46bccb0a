"""A rule and its validation: `name`, `providers`, `events` (globs) and/or `policy` (generic policy events),
`when` (conditions), `throttle` (`once_within`, `group_by`), `actions`.

`parse_rules` turns a document (`rules: [...]`) into immutable `Rule`s or raises `RuleError` naming the rule
and the key (`rules[2] (instance-errors).when.all[0]: unknown operator 'eq'`). Conditions and globs compile
here, once, so evaluating an event costs a dictionary lookup and a few closures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stackwatch.config.settings import ConfigError
from stackwatch.events.model import Event
from stackwatch.switchboard.conditions import (
    ConditionError,
    Predicate,
    compile_condition,
    compile_globs,
    field_getter,
    plain,
)
from stackwatch.switchboard.rules.actions.base import ActionError, ActionType, action_types

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
KEYS = ("name", "description", "enabled", "providers", "events", "policy", "when", "throttle", "actions")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class RuleError(ConfigError):
    """Rules that cannot be used; the message names the file, the rule and the key (a configuration error:
    the CLI shows it as one red line)."""


def parse_duration(value: Any, where: str) -> float:
    """Seconds from `10m`, `30s`, `1h`, `2d`, `500ms` or a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match or float(match[1]) <= 0:
        raise RuleError(f"{where}: must be a duration such as 30s, 10m, 1h, 2d")
    return float(match[1]) * _SECONDS[match[2]]


@dataclass(frozen=True)
class Throttle:
    """Fire at most once per `once_within` seconds (event time) for each value of the `group_by` fields."""

    once_within: float
    group_by: tuple[str, ...] = ()
    getters: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    def key(self, event: Event) -> str:
        return "\x1f".join("" if (v := g(event)) is None else str(v) for g in self.getters)[:512]


@dataclass(frozen=True)
class Action:
    index: int
    kind: str
    options: Mapping[str, Any]
    max_attempts: int
    type: ActionType = field(compare=False, repr=False)


@dataclass(frozen=True)
class Rule:
    name: str
    events: tuple[str, ...]
    policies: frozenset[str]
    providers: frozenset[str] | None
    when: Predicate | None
    throttle: Throttle | None
    actions: tuple[Action, ...]
    enabled: bool = True
    description: str | None = None
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    event_regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def wants(self, provider: str, event_type: str, policy: str | None) -> bool:
        """Whether an event of this provider and type (and its policy event) is a candidate (conditions aside)."""
        if not self.enabled or (self.providers is not None and provider not in self.providers):
            return False
        if self.event_regex is not None and self.event_regex.match(event_type):
            return True
        return policy is not None and policy in self.policies

    def test(self, event: Event) -> bool:
        return self.when is None or self.when(event)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise RuleError(f"{where}: must be a string or a non-empty list of strings")
    return tuple(value)


def _throttle(spec: Any, where: str) -> Throttle:
    if not isinstance(spec, Mapping) or "once_within" not in spec or set(spec) - {"once_within", "group_by"}:
        raise RuleError(f"{where}: must be {{once_within: 10m, group_by: [vm_ref]}} (group_by optional)")
    group_by = _strings(spec["group_by"], f"{where}.group_by") if spec.get("group_by") is not None else ()
    try:
        getters = tuple(field_getter(g, f"{where}.group_by") for g in group_by)
    except ConditionError as exc:
        raise RuleError(str(exc)) from None
    return Throttle(parse_duration(spec["once_within"], f"{where}.once_within"), group_by, getters)


def _actions(spec: Any, where: str, types: Mapping[str, ActionType]) -> tuple[Action, ...]:
    if not isinstance(spec, list) or not spec:
        raise RuleError(f"{where}: must be a non-empty list such as [{{webhook: {{url: ...}}}}, {{log: {{}}}}]")
    out = []
    for index, item in enumerate(spec):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping) or len(item) != 1:
            raise RuleError(f"{at}: must be one mapping {{KIND: OPTIONS}} (kinds: {', '.join(sorted(types))})")
        (kind, options), = item.items()
        action_type = types.get(kind)
        if action_type is None:
            raise RuleError(f"{at}: unknown action {kind!r} (installed: {', '.join(sorted(types))})")
        try:
            parsed = action_type.parse(plain(options), f"{at}.{kind}")
        except ActionError as exc:
            raise RuleError(str(exc)) from None
        out.append(Action(index, kind, parsed, int(parsed.get("max_attempts") or action_type.default_max_attempts),
                          action_type))
    return tuple(out)


def parse_rule(spec: Any, where: str, types: Mapping[str, ActionType] | None = None) -> Rule:
    """One rule from its document; `where` (e.g. `rules.yaml: rules[2]`) starts every error message."""
    types = action_types() if types is None else types
    if not isinstance(spec, Mapping):
        raise RuleError(f"{where}: a rule must be a mapping")
    name = spec.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise RuleError(f"{where}.name: required; letters, digits, `_`, `.`, `-` (at most 128)")
    where = f"{where} ({name})"
    unknown = sorted(set(map(str, spec)) - set(KEYS))
    if unknown:
        raise RuleError(f"{where}: unknown key {unknown[0]!r} (keys: {', '.join(KEYS)})")
    if "events" not in spec and "policy" not in spec:
        raise RuleError(f"{where}: give `events` (event type globs) or `policy` (policy events such as vm_create)")
    try:
        events = _strings(spec["events"], f"{where}.events") if "events" in spec else ()
        regex = compile_globs(events, f"{where}.events") if events else None
        when = compile_condition(spec["when"], f"{where}.when") if spec.get("when") is not None else None
    except ConditionError as exc:
        raise RuleError(str(exc)) from None
    policies = frozenset(_strings(spec["policy"], f"{where}.policy")) if "policy" in spec else frozenset()
    providers = frozenset(_strings(spec["providers"], f"{where}.providers")) if spec.get("providers") else None
    throttle = _throttle(spec["throttle"], f"{where}.throttle") if spec.get("throttle") is not None else None
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleError(f"{where}.enabled: must be true or false")
    description = spec.get("description")
    return Rule(name=name, events=events, policies=policies, providers=providers, when=when, throttle=throttle,
                actions=_actions(spec.get("actions"), f"{where}.actions", types), enabled=enabled,
                description=str(description) if description is not None else None,
                document=plain(dict(spec)), event_regex=regex)


def parse_rules(document: Any, source: str = "rules") -> list[Rule]:
    """Every rule of a rules document (`{rules: [...]}`; an empty document has none). Names must be unique."""
    if document is None:
        return []
    if not isinstance(document, Mapping) or set(document) - {"rules"}:
        raise RuleError(f"{source}: must be a mapping with one key, `rules:` (a list of rules)")
    items = document.get("rules") or []
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise RuleError(f"{source}: `rules` must be a list of rules")
    rules = [parse_rule(item, f"{source}: rules[{i}]") for i, item in enumerate(items)]
    names = [r.name for r in rules]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise RuleError(f"{source}: rule names must be unique, repeated: {', '.join(dupes)}")
    return rules
