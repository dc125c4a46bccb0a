"""A private RabbitMQ node (own epmd, own ports) so restarts of the system broker on 5672 never touch it.

Ported from the real-openstack recipe's etc/rabbitmq/env.sh and start_all.sh / stop.sh.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from stackwatch.devcloud import proc
from stackwatch.devcloud.errors import PrerequisiteError, ServiceError
from stackwatch.devcloud.layout import HOST, Layout

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
NODE = "stackwatch-devcloud@localhost"


def pidfile(layout: Layout) -> Path:
    return layout.run / "rabbit.pid"


def log_dir(layout: Layout) -> Path:
    return layout.rabbit / "log"


def env(layout: Layout) -> dict[str, str]:
    p = layout.ports
    return {
        "HOME": str(layout.rabbit),
        "RABBITMQ_NODENAME": NODE,
        "RABBITMQ_NODE_IP_ADDRESS": HOST,
        "RABBITMQ_NODE_PORT": str(p.rabbit),
        "RABBITMQ_DIST_PORT": str(p.rabbit_dist),
        "ERL_EPMD_PORT": str(p.epmd),
        "ERL_EPMD_ADDRESS": HOST,
        "RABBITMQ_CONFIG_FILE": str(layout.etc / "rabbitmq" / "rabbitmq.conf"),
        "RABBITMQ_CONF_ENV_FILE": str(layout.etc / "rabbitmq" / "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(layout.etc / "rabbitmq" / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(layout.rabbit / "mnesia"),
        "RABBITMQ_LOG_BASE": str(log_dir(layout)),
        "RABBITMQ_PID_FILE": str(pidfile(layout)),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }


def check_installed() -> None:
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        raise PrerequisiteError("RabbitMQ is not installed: apt-get install rabbitmq-server")


def write_config(layout: Layout) -> None:
    d = layout.etc / "rabbitmq"
    d.mkdir(parents=True, exist_ok=True)
    (d / "enabled_plugins").write_text("[].\n")
    (d / "rabbitmq-env.conf").write_text("")
    for sub in ("mnesia", "log"):
        (layout.rabbit / sub).mkdir(parents=True, exist_ok=True)


def _ctl(layout: Layout, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RABBIT_BIN / "rabbitmqctl"), *args],
        env={**os.environ, **env(layout)},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start(layout: Layout, timeout: float = 90) -> None:
    check_installed()
    write_config(layout)
    log = layout.logs / "rabbitmq-server.log"
    with log.open("ab") as out:
        subprocess.run(
            [str(RABBIT_BIN / "rabbitmq-server"), "-detached"],
            env={**os.environ, **env(layout)},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if not proc.wait_until(lambda: proc.port_open(layout.ports.rabbit), timeout, interval=0.5):
        raise ServiceError(
            "rabbitmq",
            f"no listener on {HOST}:{layout.ports.rabbit} after {timeout:.0f} s",
            str(log_dir(layout)),
        )
    res = _ctl(layout, "-q", "await_startup", timeout=timeout)
    if res.returncode != 0:
        raise ServiceError("rabbitmq", f"await_startup failed: {res.stderr.strip()[-300:]}", str(log_dir(layout)))


def pid(layout: Layout) -> int | None:
    return proc.read_pid(pidfile(layout))


def stop(layout: Layout) -> list[str]:
    """Stop the node (by its pid file) and its private epmd (by the pid listening on the epmd port)."""
    done = []
    p = pid(layout)
    if proc.alive(p):
        res = _ctl(layout, "-q", "stop", str(pidfile(layout)), timeout=60) if layout.etc.exists() else None
        if res is None or res.returncode != 0 or proc.alive(p):
            proc.stop_pid(p, signal.SIGTERM, timeout=15)
        done.append(f"rabbitmq ({p})")
    pidfile(layout).unlink(missing_ok=True)
    epmd = proc.listener_pid(layout.ports.epmd)
    if epmd and "epmd" in _cmdline(epmd):
        proc.stop_pid(epmd, signal.SIGTERM, timeout=5)
        done.append(f"epmd ({epmd})")
    return done


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
