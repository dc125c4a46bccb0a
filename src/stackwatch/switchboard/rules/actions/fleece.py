"""The `fleece` action: SmartState analysis of the event's instance (`instance:<vm_ref>`) or image
(`glance:<image_ref>`), the report kept in the store (`GET /api/v1/fleece`). The dispatcher runs at most
`automation.max_fleeces` at once and queues the rest (the outbox's kind cap). A report without an OS is
retried (the snapshot may not be ready), `max_attempts` (default 3) times."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stackwatch.events.model import Event
from stackwatch.push.outcome import Outcome
from stackwatch.switchboard.rules.actions.base import ActionContext, ActionError, Plan, invalid_plan

_TARGETS = {"instance": ("vm_ref", "instance:"), "image": ("image_ref", "glance:")}


class FleeceAction:
    name = "fleece"
    default_max_attempts = 3

    def parse(self, options: Any, where: str) -> dict[str, Any]:
        options = {} if options is None else options
        if isinstance(options, str):
            options = {"target": options}
        if not isinstance(options, Mapping) or set(options) - {"target", "via", "max_attempts"}:
            raise ActionError(f"{where}: options are `target` (instance or image), `via` and `max_attempts`")
        target = options.get("target", "instance")
        if target not in _TARGETS:
            raise ActionError(f"{where}.target: must be instance or image")
        via = options.get("via", "snapshot")
        if via not in ("snapshot", "hypervisor"):
            raise ActionError(f"{where}.via: must be snapshot or hypervisor")
        attempts = options.get("max_attempts", self.default_max_attempts)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 20:
            raise ActionError(f"{where}.max_attempts: must be an integer from 1 to 20")
        return {"target": target, "via": via, "max_attempts": attempts}

    def plan(self, rule: str, options: Mapping[str, Any], event: Event) -> Plan:
        column, prefix = _TARGETS[options["target"]]
        ref = getattr(event, column)
        if not ref:
            return invalid_plan(f"the event carries no {column}: nothing to fleece")
        target = prefix + ref
        return Plan(kind="fleece", spec={"provider": event.provider, "target": target, "via": options["via"]},
                    target=f"fleece {target}")

    def sender(self, context: ActionContext):  # noqa: ANN201 - a Sender
        def send(delivery: Any) -> Outcome:
            from stackwatch.fleece.reports import FleeceReports
            from stackwatch.fleece.runner import fleece_one
            from stackwatch.fleece.targets import SourceOptions
            from stackwatch.fleece.worker import Limits
            from stackwatch.masking import mask_text

            spec = delivery.spec
            provider = context.settings.provider_or_default(spec["provider"])
            report = fleece_one(spec["target"], SourceOptions(cloud=provider.cloud), Limits(), spec["via"])
            report["errors"] = [mask_text(e) for e in report.get("errors", [])]
            report_id = FleeceReports(context.engine).save(report, provider=spec["provider"])
            os_id = (report.get("os") or {}).get("id")
            if os_id:
                return Outcome.success(f"report {report_id}: {os_id}")
            errors = "; ".join(report["errors"]) or "no operating system found"
            return Outcome("retry", error=f"report {report_id}: {errors}"[:1000])

        return send
