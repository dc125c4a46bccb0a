"""Small real images for the backing-file tests: a raw ext4 guest made by mkfs.ext4 -d, and qcow2 overlays
whose header names any backing file, written by qemu-img (`rebase -u` writes the name as given, so a
hostile name is in the header exactly as a tenant would put it there)."""

from __future__ import annotations

import subprocess
from pathlib import Path

HOSTNAME = "backed"
SIZE = 16 << 20


def guest(path: Path, hostname: str = HOSTNAME) -> Path:
    """A raw disk holding one ext4 filesystem with /etc/os-release, passwd and hostname (a root fleece finds)."""
    root = path.parent / f".{path.name}.root"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").write_text('ID=debian\nNAME="Debian GNU/Linux"\nPRETTY_NAME="Backed"\n')
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/hostname").write_text(hostname + "\n")
    with path.open("wb") as f:
        f.truncate(SIZE)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(path)], check=True)
    return path


def overlay(path: Path, backing: str, backing_format: str = "raw") -> Path:
    """An empty qcow2 (every read falls through to the backing file) whose header names `backing`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), str(SIZE)], check=True)
    subprocess.run(
        ["qemu-img", "rebase", "-q", "-u", "-f", "qcow2", "-b", backing, "-F", backing_format, str(path)], check=True
    )
    return path


def chain(directory: Path, depth: int, stem: str = "chain") -> Path:
    """`depth` qcow2 files, `<stem>-0000.qcow2` -> `<stem>-0001.qcow2` -> ..., the last naming a file that
    does not exist. One template is written by qemu-img (512-byte clusters: about 2 KiB a file), the rest
    are copies with the backing name patched (same length), so 1,000 files take well under a second."""
    directory.mkdir(parents=True, exist_ok=True)
    template = directory / f"{stem}.template"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", str(template), "1M"], check=True
    )
    name0 = f"{stem}-0001.qcow2".encode()
    subprocess.run(
        ["qemu-img", "rebase", "-q", "-u", "-f", "qcow2", "-b", name0.decode(), "-F", "qcow2", str(template)],
        check=True,
    )
    data = template.read_bytes()
    assert data.count(name0) == 1
    for i in range(depth):
        (directory / f"{stem}-{i:04d}.qcow2").write_bytes(data.replace(name0, f"{stem}-{i + 1:04d}.qcow2".encode()))
    template.unlink()
    return directory / f"{stem}-0000.qcow2"
