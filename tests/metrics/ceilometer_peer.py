"""Ceilometer 27's notification agent with its real `gnocchi://` publisher, for the metrics tests: installed
from PyPI into ~/.cache/stackwatch/gnocchi/venv-ceilo (its own venv: its oslo.* set differs from stackwatch's),
consuming its own RabbitMQ vhost and writing to a `GnocchiPeer`. Settings from
../shared/reference/gnocchi/RECIPE.md section 6 (`enable_filter_project=false`, `auth_type = gnocchi-basic`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.metrics.gnocchi_peer import CACHE, GnocchiPeer, install_venv

VENV = CACHE / "venv-ceilo"
CONSTRAINTS = Path(__file__).resolve().parents[1] / "data" / "gnocchi" / "constraints-ceilometer.txt"

CONF = """[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:5672/{vhost}
pipeline_cfg_file = {root}/pipeline.yaml
event_pipeline_cfg_file = {root}/event_pipeline.yaml
log_dir = {root}/log
debug = false

[service_credentials]
auth_type = gnocchi-basic
user = admin
endpoint = {gnocchi}

[notification]
workers = 1

[oslo_messaging_notifications]
topics = notifications
"""
PIPELINE = """---
sources:
    - name: {kind}_source
      {kind}s: ["*"]
      sinks: [{kind}_sink]
sinks:
    - name: {kind}_sink
      publishers:
          - gnocchi://?enable_filter_project=false
"""


def install(log=sys.stderr) -> Path:  # noqa: ANN001
    return install_venv(VENV, CONSTRAINTS, ["ceilometer==27.0.0"], "27.0.0", log)


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True, timeout=60).stdout


class CeilometerAgent:
    """`ceilometer-agent-notification` on its own vhost; `start()` returns once it consumes notifications."""

    def __init__(self, root: Path, gnocchi: GnocchiPeer) -> None:
        self.root = root
        self.gnocchi = gnocchi
        self.vhost = f"metrics_ceilo_{uuid.uuid4().hex[:8]}"
        self.url = f"rabbit://guest:guest@127.0.0.1:5672/{self.vhost}"
        self.proc: subprocess.Popen | None = None

    @property
    def conf(self) -> Path:
        return self.root / "ceilometer.conf"

    def start(self, timeout: float = 180) -> CeilometerAgent:
        install()
        (self.root / "log").mkdir(parents=True, exist_ok=True)
        self.conf.write_text(CONF.format(vhost=self.vhost, root=self.root, gnocchi=self.gnocchi.url))
        (self.root / "pipeline.yaml").write_text(PIPELINE.format(kind="meter"))
        (self.root / "event_pipeline.yaml").write_text(PIPELINE.format(kind="event"))
        _rabbitmqctl("add_vhost", self.vhost)
        _rabbitmqctl("set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        subprocess.run([str(VENV / "bin" / "ceilometer-upgrade"), "--config-file", str(self.conf), "--retry", "5"],
                       check=True, env=env, capture_output=True, timeout=300)
        self.proc = subprocess.Popen(
            [str(VENV / "bin" / "ceilometer-agent-notification"), "--config-file", str(self.conf)],
            stdout=self._log(), stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ceilometer-agent-notification exited: see {self.root / 'log'}")
            queues = _rabbitmqctl("list_queues", "-p", self.vhost, "name", "consumers")
            if any(line.split() == ["notifications.info", "1"] for line in queues.splitlines()) and any(
                    line.split() == ["notifications.sample", "1"] for line in queues.splitlines()):
                return self
            time.sleep(0.5)
        raise RuntimeError(f"ceilometer-agent-notification not consuming within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        with contextlib.suppress(subprocess.SubprocessError):
            _rabbitmqctl("delete_vhost", self.vhost)

    def _log(self):  # noqa: ANN202 - a file the child process inherits
        return open(self.root / "log" / "agent.stdout", "a")  # noqa: SIM115 - closed with the process


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        print(install(sys.stdout))
    else:
        sys.exit("usage: ceilometer_peer.py install")
