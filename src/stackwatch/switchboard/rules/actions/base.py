"""The action plugin contract and its registry (entry-point group `stackwatch.actions`).

An action type validates its options once, when the rules are loaded (`parse`, errors name the rule and
key), turns a matched event into what to deliver (`plan`: the outbox's spec, body and a masked target; also
what `rules test` shows without sending), and sends a planned delivery from the dispatcher (`sender`).
Plugins by entry points: a third-party action is an installed package, not an edit of this list.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from stackwatch.events.model import Event
from stackwatch.push.outcome import Outcome

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import Settings
    from stackwatch.push.dispatcher import Sender

log = logging.getLogger(__name__)

GROUP = "stackwatch.actions"


class ActionError(ValueError):
    """An action's options are not usable, or an event cannot be planned; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Plan:
    """What one action does for one event: the outbox's kind, spec, body and a masked target."""

    kind: str
    spec: Mapping[str, Any]
    target: str
    body: bytes | None = None


@dataclass(frozen=True)
class ActionContext:
    """What senders may use: the settings, the store's engine, the inventory refresher (may be None)."""

    settings: Settings
    engine: Any
    refresher: Any = None


class ActionType(Protocol):
    name: str
    default_max_attempts: int

    def parse(self, options: Any, where: str) -> dict[str, Any]: ...

    def plan(self, rule: str, options: Mapping[str, Any], event: Event) -> Plan: ...

    def sender(self, context: ActionContext) -> Sender: ...


def invalid_plan(error: str) -> Plan:
    """A plan that cannot be carried out (an event without the ref a fleece needs): delivered as a final
    failure, so the match and its reason are audited and visible in `rules runs --failed`."""
    return Plan(kind="invalid", spec={"error": error}, target="-")


def invalid_sender(delivery: Any) -> Outcome:
    return Outcome("final", error=str(delivery.spec.get("error") or "invalid action"))


@functools.cache
def action_types() -> dict[str, ActionType]:
    """Installed action types by name; one that fails to load is logged and left out."""
    found: dict[str, ActionType] = {}
    for ep in entry_points(group=GROUP):
        try:
            found[ep.name] = ep.load()()
        except Exception:  # noqa: BLE001 - a broken plugin must not stop the others
            log.exception("action plugin failed to load; skipped", extra={"plugin": ep.name, "target": ep.value})
    return found
