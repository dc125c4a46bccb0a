"""`stackwatch serve` as a user runs it: its own process, a YAML config, a free port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from stackwatch.devcloud import proc


class Serve:
    def __init__(self, root: Path, config: dict, port: int) -> None:
        self.root, self.port = root, port
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "stackwatch.yaml"
        self.config.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        env = {**os.environ, "STACKWATCH_DATA_DIR": str(self.root / "data")}
        out = (self.root / "serve.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "stackwatch", "-c", str(self.config), "serve", "--port", str(self.port),
             "--log-level", "warning"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stackwatch serve exited {self.proc.returncode}: {self.root / 'serve.log'}")
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2).read()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("stackwatch serve did not answer")

    def stop(self) -> None:
        if self.proc is not None:
            proc.stop_pid(self.proc.pid, timeout=20)
        self.proc = None
