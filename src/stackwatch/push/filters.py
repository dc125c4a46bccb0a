"""Which events a subscription (or a WebSocket client) receives: its scope first, then its filter.

Scope is not part of the filter on purpose: a filter only ever narrows what the scope lets through, so no
combination of globs, groups or refs (nor a WebSocket query) can widen a subscription past its owner's
project. A scope is one project, or every project *and* the events of no project (hypervisor and service
events), which only an admin may give (`--all-projects`).

Event type globs are fnmatch-style with `*` also matching dots (`compute.instance.*` matches
`compute.instance.power_on.end`), compiled by the routing table's own helper, as `events list --type` and the
routes read them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from stackwatch.events.model import GROUPS, REF_FIELDS, Event
from stackwatch.switchboard.routes import _compile as compile_globs

#: `--vm UUID`-style names for the reference fields a filter may name (`vm` -> `vm_ref`)
REF_ALIASES: dict[str, str] = {name.removesuffix("_ref"): name for name in REF_FIELDS}


class FilterError(ValueError):
    """A filter or scope that cannot be used; the message names the bad part."""


@dataclass(frozen=True)
class Scope:
    """Whose events: one project (`project_id`), or all of them, events of no project included (admins only)."""

    project_id: str | None = None
    all_projects: bool = False

    def __post_init__(self) -> None:
        if self.all_projects == (self.project_id is not None):
            raise FilterError("a scope is either one project (--project) or every project (--all-projects)")

    def admits(self, event: Event) -> bool:
        if self.all_projects:
            return True
        return event.project_id is not None and event.project_id == self.project_id


@dataclass(frozen=True)
class EventFilter:
    """Event type globs (any may match), groups (any), refs (all must be equal). Empty parts match everything."""

    events: tuple[str, ...] = ("*",)
    groups: tuple[str, ...] = ()
    refs: tuple[tuple[str, str], ...] = ()
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.events or not all(isinstance(g, str) and g for g in self.events):
            raise FilterError("events: give at least one non-empty glob")
        bad = [g for g in self.groups if g not in GROUPS]
        if bad:
            raise FilterError(f"groups: {', '.join(bad)} not one of {', '.join(GROUPS)}")
        for name, value in self.refs:
            if name not in REF_FIELDS:
                raise FilterError(f"refs: {name!r} is not one of {', '.join(REF_ALIASES)}")
            if not value:
                raise FilterError(f"refs: {name} needs a value")
        object.__setattr__(self, "_regex", compile_globs(self.events))

    @classmethod
    def build(cls, events: Iterable[str] | None = None, groups: Iterable[str] | None = None,
              refs: Mapping[str, str] | None = None) -> EventFilter:
        """From user input: `refs` may use short names (`vm`, `host`) or the event's (`vm_ref`)."""
        pairs = tuple(sorted((REF_ALIASES.get(k, k), v) for k, v in (refs or {}).items()))
        return cls(tuple(events or ("*",)), tuple(groups or ()), pairs)

    def matches(self, event: Event) -> bool:
        if self._regex.match(event.event_type) is None:
            return False
        if self.groups and event.group not in self.groups:
            return False
        return all(getattr(event, name) == value for name, value in self.refs)

    def to_json(self) -> dict[str, object]:
        return {"events": list(self.events), "groups": list(self.groups), "refs": dict(self.refs)}

    @classmethod
    def from_json(cls, document: Mapping[str, object]) -> EventFilter:
        return cls.build(document.get("events"), document.get("groups"), document.get("refs"))  # type: ignore[arg-type]


def selects(scope: Scope, flt: EventFilter, event: Event) -> bool:
    """The one test every push path applies: in scope, then through the filter."""
    return scope.admits(event) and flt.matches(event)
