#!/usr/bin/env python3
"""Build the reference-size fleece image for the benchmark only (never in CI or the tests).

Usage: build_large.py [--cache DIR] [--force]     prints the directory holding large.qcow2 and manifest.json

The issue's cost figure is for a 3 GB Debian disk in a ~245 MB qcow2; the test images are ~300 MiB disks
whose qcow2 files are 60-160 MiB, so a fixed cost of ~2 MiB looks like a larger share of them. This
builds the reference size: a 3 GiB GPT disk (BIOS boot partition + one ext4 root filling it) holding a
fuller Debian bookworm root (minbase plus the server packages in INCLUDE, from this machine's mirror),
as a qcow2. Same no-loop, no-mount recipe as build.py (whose helpers it uses); cached under
${STACKWATCH_FIXTURE_CACHE:-~/.cache/stackwatch/fleece-fixtures}/large-<hash of the builder scripts>.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import build  # noqa: E402

# minbase + systemd + a server's usual tools; sized so the qcow2 is ~300 MB like the reference
# (git, perl, locales, man-db, gnupg and file took a first try to 443 MB)
INCLUDE = ",".join(
    [
        build.INCLUDE,
        "openssh-server,sudo,rsyslog,logrotate,curl,ca-certificates,less,vim-tiny,python3,python3-yaml",
        "python3-requests,iproute2,iputils-ping,netbase,bash-completion,unattended-upgrades,tzdata",
        "lsb-release,ifupdown,isc-dhcp-client,openssl,procps,psmisc,xz-utils,bzip2,zstd,rsync,tmux,htop",
    ]
)
DISK_MIB = 3072  # the "3 GB Debian disk"
HOSTNAME = "large-debian"


def key() -> str:
    h = hashlib.sha256(INCLUDE.encode())
    for name in (*build.BUILDER_FILES, "build_large.py"):
        h.update(name.encode() + b"\0" + (HERE / name).read_bytes())
    return h.hexdigest()[:16]


def make(out: Path, cache: Path) -> dict:
    work = out / "work"
    tree = work / "debian"
    tree.mkdir(parents=True)
    with tarfile.open(build.debian_tarball(cache, INCLUDE)) as t:
        t.extractall(tree, filter="fully_trusted")
    build.customise_debian(tree)
    build.set_host(tree, HOSTNAME, "LABEL=rootfs / ext4 defaults 0 1\n")
    root = build.root_record(tree, "dpkg", build.dpkg_packages(tree))
    fs = work / "ext4.img"
    build.run("truncate", "-s", f"{DISK_MIB - 3}M", fs)  # bios:1 + root + 1 MiB of table/backup GPT
    build.run(
        "mkfs.ext4",
        "-q",
        "-F",
        "-L",
        "rootfs",
        "-U",
        build.FIXED_UUID.format(9),
        "-E",
        f"hash_seed={build.HASH_SEED}",
        "-d",
        tree,
        fs,
    )
    raw = build.mkdisk(work / "large.raw", "gpt", "bios:1", f"linux:{fs}")
    qcow = build.qemu_img(raw, out / "large.qcow2", "qcow2")
    image = {
        "file": qcow.name,
        "format": "qcow2",
        "root": "debian",
        "hostname": HOSTNAME,
        "filesystems": [{"type": "ext4", "label": "rootfs", "mountpoint": "/"}],
        "size": qcow.stat().st_size,
        "virtual_size": raw.stat().st_size,
    }
    shutil.rmtree(work)
    return {"roots": {"debian": root}, "images": {"large-gpt-ext4": image}, "include": INCLUDE}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("STACKWATCH_FIXTURE_CACHE") or str(Path.home() / ".cache/stackwatch/fleece-fixtures")
    ap.add_argument("--cache", default=default)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"large-{key()}"
    if (out / "manifest.json").exists() and not a.force:
        print(out)
        return 0
    for stale in cache.glob("large-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = cache / f".building-large-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        manifest = make(tmp, cache)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    build.log(f"built the large image in {out}")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
