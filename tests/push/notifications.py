"""Notification bodies for push tests: oslo 1.0 bodies (the shape nova's legacy notifications have) of a few
projects and VMs, with event types varied so flood control (identical (type, VM) storms) never collapses them."""

from __future__ import annotations

import uuid

TYPES = ("compute.instance.power_on.end", "compute.instance.power_off.end", "compute.instance.reboot.end",
         "compute.instance.update")


def body(i: int, project: str, vm: str) -> dict:
    return {
        "message_id": str(uuid.uuid4()), "event_type": TYPES[i % len(TYPES)], "publisher_id": "compute.host1",
        "timestamp": f"2026-12-07 23:00:00.{i % 1_000_000:06d}", "priority": "INFO",
        "_context_project_id": project, "_context_request_id": f"req-{i}",
        "payload": {"instance_id": vm, "tenant_id": project, "state": "active", "seq": i},
    }


def bodies(n: int, projects: tuple[str, ...], vms: int = 100) -> list[dict]:
    return [body(i, projects[i % len(projects)], f"00000000-0000-4000-8000-{i % vms:012d}") for i in range(n)]
