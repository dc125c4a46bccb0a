"""The routing table engine: reads routes.yaml (shipped) plus an operator override, answers per event type.

One table drives the timeline group and level, the references an event carries, its refresh targets and its
policy event, so they cannot disagree (ManageIQ keeps them in four places; see docs/routing.md). Rules are
merged field by field, the first rule that sets a field wins; answers are cached per event type.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from stackwatch.events.model import GROUPS, LEVELS, RECORD_INDEX, REF_FIELDS

OWNER_FIELDS: tuple[str, ...] = ("project_id", "user_id")
REF_NAMES: frozenset[str] = frozenset(REF_FIELDS + OWNER_FIELDS)
#: refresh kinds that map onto an event column
KIND_TO_COLUMN: dict[str, str] = {
    "vm": "vm_ref", "host": "host_ref", "image": "image_ref", "volume": "volume_ref",
    "snapshot": "snapshot_ref", "network": "network_ref", "subnet": "subnet_ref", "port": "port_ref",
    "router": "router_ref", "floating_ip": "floating_ip_ref", "security_group": "security_group_ref",
    "stack": "stack_ref",
}
EXTRA_KINDS: frozenset[str] = frozenset(
    {"project", "aggregate", "keypair", "flavor", "server_group", "backup", "user", "security_group_rule"}
)
_EVENT_FIELDS = ("group", "level", "policy", "refresh")


class RoutingError(ValueError):
    """The routing table is invalid; the message names the file, the rule and the key."""


@dataclass(frozen=True, slots=True)
class Route:
    group: str = "other"
    level: str = "detail"
    policy: str | None = None
    refresh: tuple[str, ...] = ()
    ref_paths: dict[str, tuple[str, ...]] = field(default_factory=dict)
    target_paths: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: ref_paths as (index in an event record, paths already split): the converter's per-event loop
    #: parses and looks up nothing
    ref_plan: tuple[tuple[int, tuple[CompiledPath, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class _Rule:
    patterns: tuple[str, ...]
    regex: re.Pattern[str]
    values: dict[str, Any]

    def matches(self, event_type: str) -> bool:
        return self.regex.match(event_type) is not None


def _compile(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def _patterns(rule: dict[str, Any], where: str) -> tuple[str, ...]:
    match = rule.get("match")
    if isinstance(match, str):
        return (match,)
    if isinstance(match, list) and match and all(isinstance(p, str) for p in match):
        return tuple(match)
    raise RoutingError(f"{where}.match: must be a glob or a non-empty list of globs")


def _path_list(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return tuple(value)
    raise RoutingError(f"{where}: must be a payload path or a list of them")


def _parse_ref_rule(rule: dict[str, Any], where: str) -> _Rule:
    patterns = _patterns(rule, where)
    values: dict[str, Any] = {}
    for key, value in rule.items():
        if key == "match":
            continue
        if key == "targets":
            if not isinstance(value, dict):
                raise RoutingError(f"{where}.targets: must map a target kind to payload paths")
            for kind, paths in value.items():
                if kind not in EXTRA_KINDS and kind not in KIND_TO_COLUMN:
                    known = sorted(EXTRA_KINDS | set(KIND_TO_COLUMN))
                    raise RoutingError(f"{where}.targets.{kind}: unknown kind (known: {known})")
                values[f"target:{kind}"] = _path_list(paths, f"{where}.targets.{kind}")
        elif key in REF_NAMES:
            values[key] = _path_list(value, f"{where}.{key}")
        else:
            raise RoutingError(f"{where}.{key}: unknown reference (known: {sorted(REF_NAMES)})")
    return _Rule(patterns, _compile(patterns), values)


def _parse_event_rule(rule: dict[str, Any], where: str) -> _Rule:
    patterns = _patterns(rule, where)
    values: dict[str, Any] = {}
    for key, value in rule.items():
        if key == "match":
            continue
        if key == "group":
            if value not in GROUPS:
                raise RoutingError(f"{where}.group: {value!r} is not one of {', '.join(GROUPS)}")
        elif key == "level":
            if value not in LEVELS:
                raise RoutingError(f"{where}.level: {value!r} is not one of {', '.join(LEVELS)}")
        elif key == "policy":
            if value is not None and not (isinstance(value, str) and re.fullmatch(r"[a-z][a-z0-9_]*", value)):
                raise RoutingError(f"{where}.policy: must be a snake_case name")
        elif key == "refresh":
            if not isinstance(value, list):
                raise RoutingError(f"{where}.refresh: must be a list of target kinds")
            for kind in value:
                base = kind.removeprefix("all:") if isinstance(kind, str) else kind
                if base not in KIND_TO_COLUMN and base not in EXTRA_KINDS:
                    raise RoutingError(f"{where}.refresh: unknown target kind {kind!r}")
            value = tuple(value)
        else:
            raise RoutingError(f"{where}.{key}: unknown field (known: {', '.join(_EVENT_FIELDS)})")
        values[key] = value
    return _Rule(patterns, _compile(patterns), values)


def _load_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RoutingError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise RoutingError(f"{source}: must be a mapping with `refs` and `events` lists")
    unknown = set(doc) - {"refs", "events"}
    if unknown:
        raise RoutingError(f"{source}: unknown section(s) {sorted(unknown)} (known: refs, events)")
    return doc


class RoutingTable:
    def __init__(self, documents: list[tuple[str, dict[str, Any]]]) -> None:
        self.ref_rules: list[_Rule] = []
        self.event_rules: list[_Rule] = []
        for source, doc in documents:
            for section, parse, target in (
                ("refs", _parse_ref_rule, self.ref_rules),
                ("events", _parse_event_rule, self.event_rules),
            ):
                rules = doc.get(section) or []
                if not isinstance(rules, list):
                    raise RoutingError(f"{source}: `{section}` must be a list of rules")
                for index, rule in enumerate(rules):
                    where = f"{source}: {section}[{index}]"
                    if not isinstance(rule, dict):
                        raise RoutingError(f"{where}: must be a mapping")
                    target.append(parse(rule, where))
        self.route = lru_cache(maxsize=4096)(self._route)

    @classmethod
    def load(cls, override: str | Path | None = None) -> RoutingTable:
        """The shipped table, with the operator's rules (read first, so they win) when given."""
        shipped = resources.files("stackwatch.switchboard").joinpath("routes.yaml").read_text(encoding="utf-8")
        documents = [("routes.yaml", _load_yaml(shipped, "routes.yaml"))]
        if override:
            path = Path(override)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise RoutingError(f"cannot read routing override {path}: {exc.strerror or exc}") from exc
            documents.insert(0, (str(path), _load_yaml(text, str(path))))
        return cls(documents)

    def _route(self, event_type: str) -> Route:
        chosen: dict[str, Any] = {}
        for rule in self.event_rules:
            if rule.matches(event_type):
                for key, value in rule.values.items():
                    chosen.setdefault(key, value)
        refs: dict[str, tuple[str, ...]] = {}
        targets: dict[str, tuple[str, ...]] = {}
        for rule in self.ref_rules:
            if rule.matches(event_type):
                for key, paths in rule.values.items():
                    bucket, name = (targets, key[7:]) if key.startswith("target:") else (refs, key)
                    # paths of later rules extend earlier ones: specific paths first, fallbacks after
                    bucket[name] = bucket.get(name, ()) + tuple(p for p in paths if p not in bucket.get(name, ()))
        return Route(
            group=chosen.get("group", "other"),
            level=chosen.get("level", "detail"),
            policy=chosen.get("policy"),
            refresh=chosen.get("refresh", ()),
            ref_paths=refs,
            target_paths=targets,
            ref_plan=tuple(
                (RECORD_INDEX[name], tuple(compile_path(p) for p in paths)) for name, paths in refs.items()
            ),
        )

    def is_routed(self, event_type: str) -> bool:
        """True when a rule other than the final catch-all sets this type's group."""
        return any(r.matches(event_type) and "group" in r.values and r.patterns != ("*",) for r in self.event_rules)


CompiledPath = tuple[tuple[str | int, ...], str | None]
"""A payload path split once: (parts, transform), e.g. `arn|basename` -> (("arn",), "basename")."""


@lru_cache(maxsize=2048)
def compile_path(path: str) -> CompiledPath:
    transform = None
    if "|" in path:
        path, transform = path.split("|", 1)
    return tuple(int(p) if p.isdigit() else p for p in path.split(".")), transform


def resolve_path(document: Any, path: str) -> Any:
    """Follow a dotted path, stepping through `nova_object.data` wrappers; None when anything is missing."""
    return resolve_compiled(document, compile_path(path))


def resolve_compiled(document: Any, compiled: CompiledPath) -> Any:
    parts, transform = compiled
    node = document
    for part in parts:
        if type(node) is dict:
            value = node.get(part) if type(part) is str else None
            if value is None and "nova_object.data" in node:
                inner = node["nova_object.data"]
                value = inner.get(part) if type(inner) is dict and type(part) is str else None
            node = value
        elif type(node) is list and type(part) is int:
            node = node[part] if part < len(node) else None
        else:
            return None
        if node is None:
            return None
    if type(node) is dict and "nova_object.data" in node:
        node = node["nova_object.data"]
    if transform == "basename" and isinstance(node, str):
        node = node.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return node


def first_scalar(document: Any, paths: tuple[str, ...]) -> str | None:
    return first_scalar_compiled(document, tuple(compile_path(p) for p in paths))


def first_scalar_compiled(document: Any, paths: tuple[CompiledPath, ...]) -> str | None:
    """The first path that yields a non-empty string or integer, as a string of at most 255 characters."""
    for path in paths:
        parts, transform = path
        if len(parts) == 1 and transform is None and type(document) is dict:
            # most paths are one key of the payload: answered here without the general walk (a third of
            # the converter's reference cost); anything else (a nova_object wrapper, an int) walks as usual
            value = document.get(parts[0])
            if value is None and "nova_object.data" in document:  # a versioned payload: look inside
                inner = document["nova_object.data"]
                value = inner.get(parts[0]) if type(inner) is dict else None
            if type(value) is str:
                if value:
                    return value[:255]
                continue
            if value is None:
                continue
        value = resolve_compiled(document, path)
        if type(value) is str:
            if value:
                return value[:255]
        elif type(value) is int:
            return str(value)[:255]
    return None
