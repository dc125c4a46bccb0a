"""Zaqar 23 (OpenStack's messaging service) beside devcloud, for push's `zaqar:QUEUE` destinations and tests.

An add-on, not a devcloud core service: it never restarts Keystone or the others. It installs Zaqar from PyPI
into its own cached venv (`~/.cache/stackwatch/zaqar/venv`, or `$STACKWATCH_ZAQAR_HOME`; about 30 s once),
starts a private Redis (message and management store) and the Zaqar WSGI and WebSocket servers on free
loopback ports, behind keystonemiddleware against devcloud's Keystone (`auth_strategy = keystone`), and
registers the API in Keystone's catalog as service type `messaging`, replacing an endpoint a previous run left.
Configuration follows ../shared/reference/zaqar/RECIPE.md (the `notification_*` options in their underscore form,
and `message_pipeline = zaqar.notification.notifier`, without which Zaqar's own subscriptions never fire).

    python -m stackwatch.devcloud.zaqar install     # what .ci/run runs in the background
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from stackwatch.devcloud import proc

REQUIREMENTS = ("zaqar[redis]>=23,<24", "keystonemiddleware")


class ZaqarError(RuntimeError):
    """Zaqar could not be installed or started; the message names the log to read."""


def home() -> Path:
    return Path(os.environ.get("STACKWATCH_ZAQAR_HOME") or Path.home() / ".cache" / "stackwatch" / "zaqar")


def install(root: Path | None = None) -> Path:
    """The venv's bin directory, installed once (under a lock: parallel callers wait for one install)."""
    root = root or home()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / "venv"
    stamp = root / "installed"
    with open(root / "install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = stamp.is_file() and stamp.read_text() == "\n".join(REQUIREMENTS)
        if done and (venv / "bin" / "zaqar-server").exists():
            return venv / "bin"
        log = root / "install.log"
        with open(log, "wb") as out:
            for argv in ([sys.executable, "-m", "venv", str(venv)],
                         [str(venv / "bin" / "pip"), "install", "-q", *REQUIREMENTS]):
                if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
                    raise ZaqarError(f"installing Zaqar failed: {' '.join(argv[:3])} ... (log: {log})")
        stamp.write_text("\n".join(REQUIREMENTS))
    return venv / "bin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(work: Path, ports: dict[str, int], auth_url: str | None, admin_password: str | None) -> str:
    store = f"redis://127.0.0.1:{ports['redis']}?dbid=0"
    keystone = f"""[keystone_authtoken]
www_authenticate_uri = {auth_url}
auth_url = {auth_url}
auth_type = password
username = admin
password = {admin_password}
project_name = admin
user_domain_name = Default
project_domain_name = Default
""" if auth_url else ""
    return f"""[DEFAULT]
auth_strategy = {"keystone" if auth_url else ""}
log_file = {work / 'zaqar.log'}
[drivers]
transport = wsgi
message_store = redis
management_store = redis
[drivers:message_store:redis]
uri = {store}
[drivers:management_store:redis]
uri = {store}
[drivers:transport:wsgi]
bind = 127.0.0.1
port = {ports['wsgi']}
[drivers:transport:websocket]
bind = 127.0.0.1
port = {ports['websocket']}
notification_bind = 127.0.0.1
notification_port = {ports['notification']}
[storage]
message_pipeline = zaqar.notification.notifier
[signed_url]
secret_key = {secrets.token_hex(16)}
{keystone}"""


@dataclass
class Zaqar:
    url: str
    websocket_url: str
    work: Path
    pids: list[int] = field(default_factory=list)

    def stop(self) -> None:
        for pid in reversed(self.pids):
            proc.stop_pid(pid)
        self.pids.clear()


def start(auth_url: str | None, admin_password: str | None, work: Path, timeout: float = 90.0) -> Zaqar:
    """Redis, Zaqar WSGI and WebSocket servers on free ports under `work`, authenticating against `auth_url`
    (None: no authentication, as bench/push.py's reference run uses it; X-Project-ID names the project)."""
    redis = shutil.which("redis-server")
    if redis is None:
        raise ZaqarError("redis-server is not installed (apt-get install redis-server)")
    bin_dir = install()
    work.mkdir(parents=True, exist_ok=True)
    ports = {name: _free_port() for name in ("redis", "wsgi", "websocket", "notification")}
    conf = work / "zaqar.conf"
    conf.write_text(_config(work, ports, auth_url, admin_password))
    (work / "zaqar-ws.conf").write_text(f"[drivers]\ntransport = websocket\n[DEFAULT]\nlog_file = {work / 'ws.log'}\n")
    zaqar = Zaqar(f"http://127.0.0.1:{ports['wsgi']}", f"ws://127.0.0.1:{ports['websocket']}", work)
    try:
        redis_argv = [redis, "--bind", "127.0.0.1", "--port", str(ports["redis"]), "--save", "", "--appendonly", "no",
                      "--dir", str(work)]
        zaqar.pids.append(proc.spawn(redis_argv, work / "redis.log", work / "redis.pid"))
        if not proc.wait_until(lambda: proc.port_open(ports["redis"]), 20):
            raise ZaqarError(f"redis did not start (log: {work / 'redis.log'})")
        server = bin_dir / "zaqar-server"
        zaqar.pids.append(proc.spawn([server, "--config-file", conf], work / "wsgi.out", work / "wsgi.pid"))
        zaqar.pids.append(proc.spawn([server, "--config-file", conf, "--config-file", work / "zaqar-ws.conf"],
                                     work / "ws.out", work / "ws.pid"))
        answers = lambda: proc.http_status(f"{zaqar.url}/v2/ping") is not None  # noqa: E731 - 401 counts
        if not proc.wait_until(answers, timeout) or not proc.wait_until(
                lambda: proc.port_open(ports["websocket"]), timeout):
            raise ZaqarError(f"Zaqar did not answer within {timeout:g}s (logs: {work})")
    except BaseException:
        zaqar.stop()
        raise
    return zaqar


def register(session, url: str) -> None:  # noqa: ANN001 - a keystoneauth session with an admin token
    """Service type `messaging` in Keystone's catalog with public and internal endpoints at `url` (replacing
    older ones)."""
    from stackwatch.devcloud.catalog import set_endpoints

    set_endpoints(session, "zaqar", "messaging", dict.fromkeys(("public", "internal"), url))


if __name__ == "__main__":  # pragma: no cover - .ci/run: `python -m stackwatch.devcloud.zaqar install`
    if sys.argv[1:] != ["install"]:
        raise SystemExit("usage: python -m stackwatch.devcloud.zaqar install")
    print(install())
