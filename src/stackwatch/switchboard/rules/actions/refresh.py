"""The `refresh` action: a targeted inventory refresh of chosen kinds for the event (`kinds: [vm, image,
flavor]`): the kinds the event carries a reference for are refreshed by id, the others (flavor, keypair) as
a whole kind. A failed refresh is retried with back-off like any delivery."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackwatch.events.model import Event
from stackwatch.push.outcome import Outcome
from stackwatch.switchboard.routes import EXTRA_KINDS, KIND_TO_COLUMN
from stackwatch.switchboard.rules.actions.base import ActionContext, ActionError, Plan
from stackwatch.switchboard.targets import Target

KINDS = frozenset(KIND_TO_COLUMN) | EXTRA_KINDS


class RefreshAction:
    name = "refresh"
    default_max_attempts = 5

    def parse(self, options: Any, where: str) -> dict[str, Any]:
        options = {} if options is None else options
        if isinstance(options, list):
            options = {"kinds": options}
        if not isinstance(options, Mapping) or set(options) - {"kinds"}:
            raise ActionError(f"{where}: the option is `kinds` (a list of inventory kinds)")
        kinds = options.get("kinds", ["vm"])
        if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
            raise ActionError(f"{where}.kinds: must be a non-empty list of inventory kinds")
        if bad := sorted(set(kinds) - KINDS):
            raise ActionError(f"{where}.kinds: unknown kind {bad[0]!r} (kinds: {', '.join(sorted(KINDS))})")
        return {"kinds": list(dict.fromkeys(kinds))}

    def plan(self, rule: str, options: Mapping[str, Any], event: Event) -> Plan:
        targets: list[list[str | None]] = []
        for kind in options["kinds"]:
            if kind in KIND_TO_COLUMN:
                ref = getattr(event, KIND_TO_COLUMN[kind])
                if ref:
                    targets.append([kind, ref])
            else:
                targets.append([kind, event.project_id if kind == "project" else None])
        text = ", ".join(f"{k}:{i}" if i else f"all:{k}" for k, i in targets) or "nothing"
        return Plan(kind="refresh", spec={"provider": event.provider, "targets": targets},
                    target=f"refresh {text}")

    def sender(self, context: ActionContext):  # noqa: ANN201 - a Sender
        refresher = context.refresher

        def send(delivery: Any) -> Outcome:
            spec = delivery.spec
            if not spec["targets"]:
                return Outcome.success("the event carries none of the kinds; nothing to refresh")
            if refresher is None:
                return Outcome("final", error="no inventory refresher in this process (the provider has no cloud)")
            targets = frozenset(Target(spec["provider"], k, i) for k, i in spec["targets"])
            refresher(spec["provider"], targets, False)
            return Outcome.success(f"refreshed {len(targets)} target(s)")

        return send
