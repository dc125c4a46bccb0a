"""Optional Swift for devcloud (``stackwatch devcloud up --with swift``): account, container and object
servers and a proxy on loopback, one replica, Keystone auth.

Optional because nothing but the ``swift:`` fleece source needs an object store, and the default devcloud
(used by every devcloud test) must not get slower for it. The Swift venv has its own cache key
(spec.optional_stamp), installs in about 20-30 s and starts in about 2 s (three rings in parallel).

Why it looks the way it does:
- swift.conf lives in the state dir; every server config sets ``swift_dir`` to it, so nothing is read
  from or written to /etc/swift.
- One device, ``d1``, is a directory under ``<state>/data/swift``: ``mount_check = false``, and
  ``disable_fallocate = true`` (no space to reserve on a shared disk). The object server keeps its
  metadata in ``user.*`` xattrs, so the directory's filesystem is checked for them before anything starts.
- ``workers = 0``: each server is one process, stopped by the PID devcloud recorded.
- No memcache: keystoneauth works without it (tempauth would not), authtoken caches tokens in process.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from stackwatch.devcloud import proc, render, services
from stackwatch.devcloud.errors import PrerequisiteError, ServiceError
from stackwatch.devcloud.layout import HOST, Layout

NAME = "swift"
DEVICE = "d1"
# 2**8 partitions: a rebalance in well under a second, plenty for one device holding test objects
PART_POWER = 8
RINGS = {"account": "swift_account", "container": "swift_container", "object": "swift_object"}


def enabled(layout: Layout) -> bool:
    """Swift was started in this state dir (its configs are rendered only when it is asked for)."""
    return (layout.swift_etc / "proxy-server.conf").is_file()


def busy_ports(layout: Layout) -> list[str]:
    return [f"{name} {port}" for name, port in layout.ports.swift().items() if proc.port_open(port)]


def check_xattrs(directory: Path) -> None:
    """The object server stores object metadata in ``user.swift.metadata`` xattrs: fail clearly, before
    starting anything, on a filesystem (e.g. an old tmpfs) that has none."""
    probe = directory / ".xattr-probe"
    probe.write_bytes(b"")
    try:
        os.setxattr(probe, "user.stackwatch.probe", b"1")
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            raise PrerequisiteError(
                f"swift: {directory} is on a filesystem without user xattrs, which Swift's object server needs "
                "(set STACKWATCH_DEVCLOUD_HOME to a directory on ext4 / XFS)"
            ) from e
        raise
    finally:
        probe.unlink(missing_ok=True)


def _ring_builder(layout: Layout, args: list[str], log: Path) -> None:
    with log.open("ab") as out:
        out.write(f"$ swift-ring-builder {' '.join(args)}\n".encode())
        out.flush()
        res = subprocess.run(
            [str(layout.bin(NAME, "swift-ring-builder")), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=layout.swift_etc,
        )
    # rebalance exits 1 for warnings (e.g. balance not perfect); 2 is an error
    if res.returncode not in (0, 1) or (res.returncode == 1 and args[1] != "rebalance"):
        raise ServiceError("swift", f"`swift-ring-builder {' '.join(args[:2])}` exited {res.returncode}", str(log))


def _ring(layout: Layout, kind: str) -> None:
    builder = str(layout.swift_etc / f"{kind}.builder")
    port = getattr(layout.ports, RINGS[kind])
    log = layout.logs / f"swift-ring-{kind}.log"
    _ring_builder(layout, [builder, "create", str(PART_POWER), "1", "1"], log)  # part power, replicas, min hours
    _ring_builder(layout, [builder, "add", f"r1z1-{HOST}:{port}/{DEVICE}", "100"], log)
    _ring_builder(layout, [builder, "rebalance"], log)
    if not (layout.swift_etc / f"{kind}.ring.gz").is_file():
        raise ServiceError("swift", f"swift-ring-builder wrote no {kind}.ring.gz", str(log))


def prepare(layout: Layout) -> str:
    """Render the configs, make the device directory, build the three rings. Returns the password of the
    Keystone user ``swift`` (the proxy's authtoken identity), which the caller registers."""
    password = secrets.token_urlsafe(16)
    layout.logs.mkdir(parents=True, exist_ok=True)
    layout.run.mkdir(parents=True, exist_ok=True)
    if layout.swift_devices.exists():
        shutil.rmtree(layout.swift_devices)  # left by a failed start: new hash suffix, so unreachable anyway
    device = layout.swift_devices / DEVICE
    device.mkdir(parents=True)
    check_xattrs(device)
    render.render_all(
        layout,
        "",
        only=NAME,
        extra={
            "SWIFT_PASSWORD": password,
            "SWIFT_HASH_PREFIX": secrets.token_hex(8),
            "SWIFT_HASH_SUFFIX": secrets.token_hex(8),
        },
    )
    with ThreadPoolExecutor(max_workers=len(RINGS)) as pool:
        for f in [pool.submit(_ring, layout, kind) for kind in RINGS]:
            f.result()
    return password


def spawn(layout: Layout) -> None:
    """Start the four servers (storage first); each logs to ``<state>/logs/swift-<kind>.log``."""
    for svc in services.SWIFT:
        proc.spawn(svc.argv(layout), Path(svc.log(layout)), layout.run / f"{svc.name}.pid", cwd=layout.state)


def wait(layout: Layout, timeout: float) -> None:
    """Until every server answers its /healthcheck; a server that exits is an error naming its log."""
    for svc in services.SWIFT:
        url = svc.url(layout)
        pidfile = layout.run / f"{svc.name}.pid"

        def ready(svc: services.Service = svc, url: str | None = url, pidfile: Path = pidfile) -> bool:
            if not proc.alive(proc.read_pid(pidfile)):
                raise ServiceError(svc.name, "process exited during start", svc.log(layout))
            return proc.http_status(url or "") == 200

        if not proc.wait_until(ready, timeout, interval=0.1):
            raise ServiceError(svc.name, f"{url} did not answer within {timeout:.0f} s", svc.log(layout))


def stop(layout: Layout) -> list[str]:
    """Stop the Swift servers by their recorded PIDs (proxy first). Returns what was stopped."""
    stopped = []
    for svc in reversed(services.SWIFT):
        pidfile = layout.run / f"{svc.name}.pid"
        pid = proc.read_pid(pidfile)
        if pid and proc.stop_pid(pid, timeout=10):
            stopped.append(f"{svc.name} ({pid})")
        pidfile.unlink(missing_ok=True)
    return stopped
