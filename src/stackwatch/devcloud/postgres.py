"""A private PostgreSQL cluster (trust auth, fsync off, own port) for Nova, Placement and Neutron.

Ported from the real-openstack recipe's start_all.sh / stop.sh. As root the server runs as the
``postgres`` user; when that user cannot reach the state directory (e.g. under a 0700 /root) the
cluster lives in /var/tmp/stackwatch-devcloud-<key>/ instead and the state dir records where.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from stackwatch.devcloud import proc
from stackwatch.devcloud.errors import PrerequisiteError, ServiceError
from stackwatch.devcloud.layout import HOST, Layout

DATABASES = ("nova_api", "nova", "nova_cell0", "placement", "neutron")


def bin_dir() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise PrerequisiteError("PostgreSQL server binaries not found: apt-get install postgresql")
    return versions[-1].parent


def _as_root() -> bool:
    return os.geteuid() == 0


def _wrap(cmd: list[str]) -> list[str]:
    if not _as_root():
        return cmd
    return ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(cmd)]


def cluster_dir(layout: Layout) -> Path:
    """Where the cluster lives (the pointer file is written by ``prepare``; default under the state dir)."""
    pointer = layout.state / "pg.location"
    if pointer.is_file():
        return Path(pointer.read_text().strip())
    return layout.state / "pg"


def _reachable_by_postgres(path: Path) -> bool:
    res = subprocess.run(_wrap(["test", "-x", str(path)]), capture_output=True)
    return res.returncode == 0


def prepare(layout: Layout) -> Path:
    """Pick and create a fresh (empty) cluster directory; returns it."""
    d = layout.state / "pg"
    if _as_root() and not _reachable_by_postgres(layout.state):
        key = hashlib.sha256(str(layout.state.resolve()).encode()).hexdigest()[:10]
        d = Path("/var/tmp") / f"stackwatch-devcloud-{key}" / "pg"
    if d.exists():
        shutil.rmtree(d)
    for sub in ("data", "sock", "log"):
        (d / sub).mkdir(parents=True)
    (d / "data").chmod(0o700)
    if _as_root():
        shutil.chown(d, "postgres", "postgres")
        for sub in ("data", "sock", "log"):
            shutil.chown(d / sub, "postgres", "postgres")
    (layout.state / "pg.location").write_text(f"{d}\n")
    return d


def log_file(layout: Layout) -> Path:
    return cluster_dir(layout) / "log" / "postgres.log"


def _run(cmd: list[str], what: str, layout: Layout) -> None:
    res = subprocess.run(_wrap(cmd), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise ServiceError(
            "postgresql", f"{what} failed: {(res.stderr or res.stdout).strip()[-400:]}", str(log_file(layout))
        )


def start(layout: Layout) -> None:
    b = bin_dir()
    d = prepare(layout)
    _run(
        [str(b / "initdb"), "-D", str(d / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        "initdb",
        layout,
    )
    opts = (
        f"-p {layout.ports.pg} -k {d / 'sock'} -c listen_addresses={HOST} -c max_connections=300 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    _run(
        [
            str(b / "pg_ctl"),
            "-D",
            str(d / "data"),
            "-l",
            str(d / "log" / "postgres.log"),
            "-o",
            opts,
            "-w",
            "start",
        ],
        "pg_ctl start",
        layout,
    )
    for db in DATABASES:
        psql(layout, f"CREATE DATABASE {db}")


def psql(layout: Layout, sql: str, db: str = "postgres") -> str:
    """Run one statement over TCP (trust auth) and return its unaligned output."""
    res = subprocess.run(
        [
            str(bin_dir() / "psql"),
            "-h",
            HOST,
            "-p",
            str(layout.ports.pg),
            "-U",
            "postgres",
            "-d",
            db,
            "-qtAc",
            sql,
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    if res.returncode != 0:
        raise ServiceError(
            "postgresql", f"psql {sql!r} on {db} failed: {res.stderr.strip()[-300:]}", str(log_file(layout))
        )
    return res.stdout


def pid(layout: Layout) -> int | None:
    return proc.read_pid(cluster_dir(layout) / "data" / "postmaster.pid")


def stop(layout: Layout) -> list[str]:
    d = cluster_dir(layout)
    p = pid(layout)
    if not proc.alive(p):
        return []
    res = subprocess.run(
        _wrap([str(bin_dir() / "pg_ctl"), "-D", str(d / "data"), "-m", "fast", "-w", "stop"]),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if res.returncode != 0 or proc.alive(p):
        proc.stop_pid(p, timeout=10)
    return [f"postgresql ({p})"]


def remove(layout: Layout) -> None:
    """Delete the cluster directory when it lives outside the state dir (called after stop, before wipe)."""
    d = cluster_dir(layout)
    if not str(d).startswith(str(layout.state)) and d.name == "pg" and d.parent.name.startswith("stackwatch-devcloud-"):
        shutil.rmtree(d.parent, ignore_errors=True)
