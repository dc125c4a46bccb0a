"""A throw-away Panko 10 API on a free loopback port (noauth pipeline), over SQLite or PostgreSQL.

The process is `stackwatch.devcloud.panko.PankoAddon` without a devcloud (the shared telemetry recipe's
scripts/panko_up.sh): requests carry X-Roles / X-User-Id / X-Project-Id instead of a token. Events are put in
through Panko's own storage driver (`record_events`, peers/panko_seed.py in Panko's venv).
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from pathlib import Path

from stackwatch.devcloud.panko import PankoAddon

SEED = Path(__file__).with_name("panko_seed.py")
NOAUTH_HEADERS = {"X-Roles": "admin", "X-User-Id": "stackwatch-test", "X-Project-Id": "stackwatch-test"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Panko(PankoAddon):
    """The noauth Panko peer, with the two things the tests do to it: put events in, read them all back."""

    def __init__(self, root: Path, db_url: str, port: int = 0) -> None:
        super().__init__(None, root, db_url, port or free_port())

    def record(self, events: list[dict]) -> None:
        record(self, events)

    def list_all(self) -> list[dict]:
        req = urllib.request.Request(
            self.url + "/v2/events?q.field=all_tenants&q.op=eq&q.type=&q.value=true&limit=1000000",
            headers=NOAUTH_HEADERS)
        return json.loads(urllib.request.urlopen(req, timeout=60).read())


def record(panko: PankoAddon, events: list[dict]) -> None:
    """Store events through Panko's own storage driver (its `record_events`), as the agent's panko://
    publisher does, into `panko`'s database."""
    data = "".join(json.dumps(e) + "\n" for e in events)
    subprocess.run([panko.bin("python"), str(SEED), str(panko.conf)], input=data.encode(), check=True,
                   stdout=subprocess.DEVNULL, timeout=1200)


def event(i: int, generated: str, project: str = "proj-a", prefix: str = "00000000-0000-0000-0000") -> dict:
    """A Nova-like event as Ceilometer's default event_definitions.yaml would produce it."""
    return {
        "message_id": f"{prefix}-{i:012d}",
        "event_type": "compute.instance.create.end",
        "generated": generated,
        "traits": [["instance_id", 1, f"inst-{i}"], ["project_id", 1, project], ["host", 1, "host1"],
                   ["resource_id", 1, f"inst-{i}"], ["memory_mb", 2, 512], ["launched_at", 4, generated]],
        "raw": {},
    }
