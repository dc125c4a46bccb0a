"""The condition language of automation rules and push subscriptions, and their event-type globs.

A condition is `{field: PATH, OP: VALUE}` with OP one of `equals`, `not_equals`, `lt`, `gt`, `in`, `matches`
(a regular expression, searched), `exists` (true/false); `{all: [...]}`, `{any: [...]}` and `{not: {...}}`
combine them. PATH is a canonical field (`event_type`, `project_id`, `vm_ref`, `group`, ... the names of
`events list --format json`) or `payload.a.b` (through nova's `nova_object.data` wrappers, so a rule written
once on a canonical field matches the legacy and the versioned shape of the same event).

Values keep what the operator wrote: compared with a string field, a value YAML read as a number (`123e4567`
stays a string in YAML 1.1, but `0123` or `12345` become numbers) is compared as its text (`rules_yaml`
keeps it). A string compared with a number field is read as a number; timestamps compare with ISO 8601
text. Values of different kinds never match (and never raise): `lt: 5` on a string field is false.

Each condition compiles once into a closure (`compile_condition`); `test(event)` costs a few attribute
reads. Errors (`ConditionError`) name where in the document the bad key is.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import yaml

from stackwatch.events.model import EVENT_JSON_FIELDS, Event
from stackwatch.switchboard.routes import resolve_path

Predicate = Callable[[Event], bool]
OPERATORS = ("equals", "not_equals", "lt", "gt", "in", "matches", "exists")
COMBINERS = ("all", "any", "not")
FIELDS = frozenset(EVENT_JSON_FIELDS) | {"collapsed_count"}
_MISSING = object()


class ConditionError(ValueError):
    """A condition or glob that cannot be used; the message starts with where it is."""


# -- values as written ---------------------------------------------------------------------------------------

class WrittenInt(int):
    """An int YAML read from a plain scalar, with the text the operator wrote (`0123`, `12345`)."""

    text: str

    def __new__(cls, value: int, text: str) -> WrittenInt:
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


class WrittenFloat(float):
    """A float YAML read from a plain scalar, with the text the operator wrote (`1.10`, `1e5`)."""

    text: str

    def __new__(cls, value: float, text: str) -> WrittenFloat:
        obj = super().__new__(cls, value)
        obj.text = text
        return obj


class _WrittenLoader(yaml.SafeLoader):
    """SafeLoader whose numbers remember their text (see the module docstring)."""


def _int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> WrittenInt:
    return WrittenInt(yaml.SafeLoader.construct_yaml_int(loader, node), node.value)


def _float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> WrittenFloat:
    return WrittenFloat(yaml.SafeLoader.construct_yaml_float(loader, node), node.value)


_WrittenLoader.add_constructor("tag:yaml.org,2002:int", _int)
_WrittenLoader.add_constructor("tag:yaml.org,2002:float", _float)


def load_yaml(text: str) -> Any:
    """YAML as rules and subscriptions read it: safe, numbers keeping their written text."""
    return yaml.load(text, Loader=_WrittenLoader)  # noqa: S506 - a SafeLoader subclass


def plain(value: Any) -> Any:
    """`value` with written numbers turned back into plain ones (for JSON, display)."""
    if isinstance(value, WrittenInt):
        return int(value)
    if isinstance(value, WrittenFloat):
        return float(value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _as_text(value: Any) -> str:
    """The string an operand stands for when compared with a string field."""
    if isinstance(value, WrittenInt | WrittenFloat):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _coerce(field_value: Any, operand: Any) -> tuple[Any, Any] | None:
    """The two sides brought to one kind, or None when they cannot compare."""
    if isinstance(field_value, str):
        return field_value, operand if isinstance(operand, str) else _as_text(operand)
    if isinstance(field_value, bool):
        if isinstance(operand, bool):
            return field_value, operand
        return (field_value, operand.lower() == "true") if isinstance(operand, str) else None
    if isinstance(field_value, int | float):
        number = _number(operand)
        return None if number is None else (field_value, number)
    if isinstance(field_value, datetime):
        if isinstance(operand, datetime):
            return field_value, operand
        if isinstance(operand, str):
            try:
                when = datetime.fromisoformat(operand.replace("Z", "+00:00"))
            except ValueError:
                return None
            if when.tzinfo is None and field_value.tzinfo is not None:
                when = when.replace(tzinfo=field_value.tzinfo)
            return field_value, when
        return None
    if field_value is None or isinstance(field_value, Mapping | list):
        return (field_value, operand) if type(field_value) is type(operand) or operand is None else None
    return None


def _equals(field_value: Any, operand: Any) -> bool:
    if field_value is _MISSING:
        return False
    pair = _coerce(field_value, operand)
    return pair is not None and pair[0] == pair[1]


def _ordered(op: str) -> Callable[[Any, Any], bool]:
    def compare(field_value: Any, operand: Any) -> bool:
        if field_value is _MISSING or field_value is None:
            return False
        pair = _coerce(field_value, operand)
        if pair is None:
            return False
        try:
            return pair[0] < pair[1] if op == "lt" else pair[0] > pair[1]
        except TypeError:  # naive and aware datetimes, say
            return False

    return compare


# -- fields --------------------------------------------------------------------------------------------------

def field_getter(path: Any, where: str) -> Callable[[Event], Any]:
    """A reader of `path` on an event: `_MISSING` when a payload path leads nowhere."""
    if not isinstance(path, str) or not path:
        raise ConditionError(f"{where}.field: must be a canonical field name or payload.PATH")
    if path == "payload":
        return lambda e: e.payload
    if path.startswith("payload."):
        rest = path[len("payload."):]

        def from_payload(event: Event) -> Any:
            value = resolve_path(event.payload, rest)
            return _MISSING if value is None else value

        return from_payload
    if path not in FIELDS:
        raise ConditionError(f"{where}.field: unknown field {path!r} (canonical fields: "
                             f"{', '.join(sorted(FIELDS))}; or payload.PATH)")
    return lambda e: getattr(e, path)


# -- compilation ---------------------------------------------------------------------------------------------

def _leaf(spec: Mapping[str, Any], where: str) -> Predicate:
    ops = [k for k in spec if k != "field"]
    unknown = [k for k in ops if k not in OPERATORS]
    if unknown:
        raise ConditionError(f"{where}: unknown operator {unknown[0]!r} (operators: {', '.join(OPERATORS)}; "
                             f"combine with {', '.join(COMBINERS)})")
    if len(ops) != 1:
        raise ConditionError(f"{where}: a condition has `field` and exactly one operator, found {ops or 'none'}")
    op, operand = ops[0], spec[ops[0]]
    get = field_getter(spec["field"], where)
    if op == "exists":
        if not isinstance(operand, bool):
            raise ConditionError(f"{where}.exists: must be true or false")
        return lambda e: (get(e) not in (None, _MISSING)) is operand
    if op == "matches":
        if not isinstance(operand, str):
            raise ConditionError(f"{where}.matches: must be a regular expression (a string)")
        try:
            regex = re.compile(operand)
        except re.error as exc:
            raise ConditionError(f"{where}.matches: bad regular expression {operand!r}: {exc}") from None

        def matches(e: Event) -> bool:
            value = get(e)
            if value is _MISSING or value is None:
                return False
            return regex.search(value if isinstance(value, str) else _as_text(value)) is not None

        return matches
    if op == "in":
        if not isinstance(operand, list | tuple) or not operand:
            raise ConditionError(f"{where}.in: must be a non-empty list of values")
        texts = frozenset(_as_text(v) for v in operand if not isinstance(v, Mapping | list))
        values = tuple(operand)

        def is_in(e: Event) -> bool:
            value = get(e)
            if isinstance(value, str):  # the common case (ids): one set lookup
                return value in texts
            return any(_equals(value, v) for v in values)

        return is_in
    if isinstance(operand, Mapping | list) and op != "equals":
        raise ConditionError(f"{where}.{op}: must be a single value")
    if op == "equals":
        if isinstance(operand, str):
            return lambda e: (v := get(e)) == operand or (not isinstance(v, str) and _equals(v, operand))
        return lambda e: _equals(get(e), operand)
    if op == "not_equals":
        return lambda e: not _equals(get(e), operand)
    compare = _ordered(op)
    return lambda e: compare(get(e), operand)


def compile_condition(spec: Any, where: str = "when") -> Predicate:
    """The predicate of a condition document (see the module docstring); `where` prefixes error messages."""
    if not isinstance(spec, Mapping) or not spec:
        raise ConditionError(f"{where}: must be a mapping: {{field: PATH, OP: VALUE}} or all/any/not")
    combiners = [k for k in spec if k in COMBINERS]
    if combiners:
        if len(spec) != 1:
            raise ConditionError(f"{where}: {combiners[0]!r} must be alone in its mapping, found {sorted(spec)}")
        key, inner = combiners[0], spec[combiners[0]]
        if key == "not":
            test = compile_condition(inner, f"{where}.not")
            return lambda e: not test(e)
        if not isinstance(inner, list) or not inner:
            raise ConditionError(f"{where}.{key}: must be a non-empty list of conditions")
        tests = tuple(compile_condition(c, f"{where}.{key}[{i}]") for i, c in enumerate(inner))
        if key == "all":
            return lambda e: all(t(e) for t in tests)
        return lambda e: any(t(e) for t in tests)
    if "field" not in spec:
        raise ConditionError(f"{where}: a condition needs `field` (or one of {', '.join(COMBINERS)}), "
                             f"found {sorted(map(str, spec))}")
    return _leaf(spec, where)


def compile_globs(patterns: Iterable[str], where: str = "events") -> re.Pattern[str]:
    """One regex for fnmatch-style globs on event types; `*` also matches dots (as routes and `events list
    --type` read them)."""
    patterns = list(patterns)
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise ConditionError(f"{where}: must be a non-empty list of event type globs")
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))
