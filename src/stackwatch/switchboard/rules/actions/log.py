"""The `log` action: one structured log line per matched event (logger `stackwatch.rules.action`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from stackwatch.events.model import Event
from stackwatch.push.outcome import Outcome
from stackwatch.switchboard.rules.actions.base import ActionContext, ActionError, Plan

action_log = logging.getLogger("stackwatch.rules.action")
_LEVELS = ("debug", "info", "warning", "error", "critical")


class LogAction:
    name = "log"
    default_max_attempts = 1

    def parse(self, options: Any, where: str) -> dict[str, Any]:
        options = {} if options is None else options
        if isinstance(options, str):
            options = {"message": options}
        if not isinstance(options, Mapping) or set(options) - {"level", "message"}:
            raise ActionError(f"{where}: options are `level` ({', '.join(_LEVELS)}) and `message`")
        level = str(options.get("level", "info")).lower()
        if level not in _LEVELS:
            raise ActionError(f"{where}.level: must be one of {', '.join(_LEVELS)}")
        return {"level": level, "message": str(options.get("message") or "rule matched")}

    def plan(self, rule: str, options: Mapping[str, Any], event: Event) -> Plan:
        fields = {"rule": rule, "message_id": event.message_id, "provider": event.provider,
                  "event_type": event.event_type, "project_id": event.project_id, **event.refs()}
        return Plan(kind="log", spec={"level": options["level"], "message": options["message"], "fields": fields},
                    target=f"log:{options['level']}")

    def sender(self, context: ActionContext):  # noqa: ANN201 - a Sender
        def send(delivery: Any) -> Outcome:
            spec = delivery.spec
            action_log.log(getattr(logging, spec["level"].upper()), spec["message"], extra=dict(spec["fields"]))
            return Outcome.success("logged")

        return send
