"""A throw-away Panko 10 API on a free loopback port (noauth pipeline), over SQLite or PostgreSQL.

Follows the shared telemetry recipe (scripts/panko_up.sh): the venv comes from
`stackwatch.devcloud.telemetry_install`; `/v2` of the hard-coded `panko+keystone` composite is pointed at the
noauth pipeline, so requests carry X-Roles / X-User-Id / X-Project-Id instead of a token. On PostgreSQL the
database runs at REPEATABLE READ (the recipe's fix for Panko's traitless-event race).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from stackwatch.devcloud import telemetry_install

SEED = Path(__file__).with_name("panko_seed.py")
NOAUTH_HEADERS = {"X-Roles": "admin", "X-User-Id": "stackwatch-test", "X-Project-Id": "stackwatch-test"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Panko:
    root: Path
    db_url: str
    port: int = 0
    proc: subprocess.Popen | None = None
    conf: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.conf = self.root / "panko.conf"
        self.port = self.port or free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bin(self, name: str) -> str:
        return str(telemetry_install.venv("panko") / "bin" / name)

    def configure(self) -> None:
        paste = telemetry_install.api_paste().read_text()
        paste = paste.replace("/v2 = pankov2_keystone_pipeline", "/v2 = pankov2_noauth_pipeline")
        paste = paste.replace("/etc/panko/healthcheck_disable", str(self.root / "healthcheck_disable"))
        (self.root / "api_paste.ini").write_text(paste)
        self.conf.write_text(
            f"[DEFAULT]\napi_paste_config = {self.root / 'api_paste.ini'}\nlog_file = {self.root / 'panko-api.log'}\n"
            f"[database]\nconnection = {self.db_url}\n[api]\ndefault_api_return_limit = 100\n"
        )
        subprocess.run([self.bin("panko-dbsync"), "--config-file", str(self.conf)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)

    def start(self, timeout: float = 60) -> None:
        out = (self.root / "api.out").open("ab")
        self.proc = subprocess.Popen(
            [self.bin("panko-api"), "--host", "127.0.0.1", "--port", str(self.port), "--", "--config-file",
             str(self.conf)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"panko-api exited {self.proc.returncode}; see {self.root / 'api.out'}")
            try:
                urllib.request.urlopen(self.url + "/", timeout=2).read()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"panko-api did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def record(self, events: list[dict]) -> None:
        """Store events through Panko's own storage driver (its `record_events`), as the agent's panko://
        publisher does."""
        data = "".join(json.dumps(e) + "\n" for e in events)
        subprocess.run([self.bin("python"), str(SEED), str(self.conf)], input=data.encode(), check=True,
                       stdout=subprocess.DEVNULL, timeout=600)

    def list_all(self) -> list[dict]:
        req = urllib.request.Request(
            self.url + "/v2/events?q.field=all_tenants&q.op=eq&q.type=&q.value=true&limit=1000000",
            headers=NOAUTH_HEADERS)
        return json.loads(urllib.request.urlopen(req, timeout=60).read())


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
