#!/usr/bin/env python3
"""Build the fleece test images from real Debian packages and record what went into them.

Usage: build.py [--cache DIR] [--force]      prints the directory holding the images and manifest.json

Everything is made on plain files (no loop devices, no mounts): debootstrap --variant=minbase into a
directory, `mkfs.ext4 -d`, `mkfs.xfs -p` with a protofile, an LVM2 PV written in Python, sfdisk on a
plain file, qemu-img for the containers, rpmbuild + `rpm --justdb` for an rpm-based root. Images are
cached under ${STACKWATCH_FIXTURE_CACHE:-~/.cache/stackwatch/fleece-fixtures}/<hash of these scripts>,
so a second run only checks that manifest.json exists. The debootstrap tree is cached separately,
keyed by its own parameters, so editing the image recipes does not download Debian again.

manifest.json is the builder's own record (dpkg-query / rpm -qa on the built roots, the passwd and
group files it wrote, the unit links systemd's postinst scripts made) which the tests compare against.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# the cache key hashes these
BUILDER_FILES = ("build.py", "mkdisk.sh", "mklvm2pv.py", "mkxfsproto.py", "vmdk_gd_at_end.py", "mkrpmbdb.py")
SUITE = "bookworm"
INCLUDE = "systemd,systemd-sysv,cron"
SHADOW_SECRET = "$6$fleecesalt$Th1sHashMustNeverAppearInAReport0123456789abcdefghijklmnopqrstuvwxyzABCD"
FIXED_UUID = "5e1ec7ed-f1ee-4ce0-9d1b-00000000000{}"
HASH_SEED = "0b5e55ed-0000-4000-8000-000000000001"


def log(msg: str) -> None:
    print(f"[fleece-fixtures] {msg}", file=sys.stderr, flush=True)


def run(*cmd: str | Path, **kw) -> str:
    return subprocess.run([str(c) for c in cmd], check=True, text=True, stdout=subprocess.PIPE, **kw).stdout


def mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line sources)."""
    for f in sorted(Path("/etc/apt").glob("sources.list*")) + sorted(Path("/etc/apt/sources.list.d").glob("*")):
        if not f.is_file() or "disabled" in f.name:
            continue
        text = f.read_text(errors="replace")
        for m in re.finditer(r"^URIs:\s*(\S+)", text, re.M):
            if "security" not in m.group(1) and "/debian" in m.group(1):
                return m.group(1)
        for m in re.finditer(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+", text, re.M):
            if "security" not in m.group(1) and "/debian" in m.group(1):
                return m.group(1)
    return "http://deb.debian.org/debian"


def scripts_hash() -> str:
    h = hashlib.sha256()
    for name in BUILDER_FILES:
        h.update(name.encode() + b"\0" + (HERE / name).read_bytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------- Debian root


def debian_tarball(cache: Path, include: str = INCLUDE) -> Path:
    """debootstrap minbase + `include` from this machine's mirror, cached as a tar keyed by its inputs."""
    key = hashlib.sha256(f"{SUITE}|minbase|{include}|{mirror()}".encode()).hexdigest()[:12]
    tar = cache / f"debootstrap-{SUITE}-{key}.tar"
    if tar.exists():
        return tar
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        root = Path(tmp) / "root"
        log(f"debootstrap --variant=minbase --include={include} {SUITE} {mirror()} (a few minutes)")
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={include}", SUITE, str(root), mirror()],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        (root / "var/cache/apt/archives/partial").mkdir(parents=True)
        for p in (root / "var/lib/apt/lists").glob("*_Packages"):
            p.unlink()
        with tarfile.open(tar.with_suffix(".part"), "w") as t:
            t.add(root, arcname=".")
        tar.with_suffix(".part").rename(tar)
    return tar


def customise_debian(root: Path) -> None:
    """Users, a group, a fake kernel pair in /boot, an fstab: the things inspect must find."""
    run("chroot", root, "groupadd", "-g", "2000", "ops")
    run(
        "chroot",
        root,
        "useradd",
        "-m",
        "-u",
        "1001",
        "-g",
        "100",
        "-G",
        "ops",
        "-s",
        "/bin/bash",
        "-c",
        "Alice Admin",
        "alice",
    )
    run(
        "chroot",
        root,
        "useradd",
        "-M",
        "-u",
        "1002",
        "-g",
        "100",
        "-G",
        "ops",
        "-s",
        "/usr/sbin/nologin",
        "bob",
    )
    run("chroot", root, "usermod", "-p", SHADOW_SECRET, "alice")
    for ver in ("6.1.0-99-amd64", "6.1.0-98-amd64"):
        (root / f"boot/vmlinuz-{ver}").write_bytes(b"not a kernel: fleece fixture\n")
        (root / f"lib/modules/{ver}").mkdir(parents=True, exist_ok=True)


def dpkg_packages(root: Path) -> list[dict]:
    out = run(
        "dpkg-query",
        f"--admindir={root}/var/lib/dpkg",
        "-W",
        "-f=${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\n",
    )
    pkgs = []
    for line in out.splitlines():
        status, name, version, arch = line.split("\t")
        if status == "installed":
            pkgs.append({"name": name, "version": version, "arch": arch})
    return pkgs


def passwd_and_group(root: Path) -> tuple[list[dict], list[dict]]:
    users = []
    for line in (root / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        users.append({"name": f[0], "uid": int(f[2]), "gid": int(f[3]), "home": f[5], "shell": f[6]})
    groups = []
    for line in (root / "etc/group").read_text().splitlines():
        f = line.split(":")
        groups.append({"name": f[0], "gid": int(f[2]), "members": [m for m in f[3].split(",") if m]})
    return users, groups


def enabled_units(root: Path) -> list[str]:
    units = set()
    for base in ("etc/systemd/system",):
        for d in (root / base).glob("*"):
            if d.is_dir() and (d.name.endswith(".wants") or d.name.endswith(".requires")):
                units.update(p.name for p in d.iterdir())
    return sorted(units)


def os_release(root: Path) -> dict:
    p = root / "etc/os-release"
    text = (
        (root / os.readlink(p).lstrip("/")).read_text()
        if p.is_symlink() and os.readlink(p).startswith("/")
        else p.read_text()
    )
    return dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', text, re.M))


def root_record(root: Path, manager: str, packages: list[dict]) -> dict:
    users, groups = passwd_and_group(root)
    osr = os_release(root)
    return {
        "os": {
            "id": osr.get("ID"),
            "name": osr.get("NAME"),
            "version": osr.get("VERSION_ID"),
            "pretty_name": osr.get("PRETTY_NAME"),
        },
        "users": users,
        "groups": groups,
        "packages": packages,
        "manager": manager,
        "enabled_units": enabled_units(root),
        "kernels": sorted(p.name[len("vmlinuz-") :] for p in (root / "boot").glob("vmlinuz-*")),
        "shadow_secret": SHADOW_SECRET,
    }


# ---------------------------------------------------------------- rpm root

SPEC = """Name: {name}
Epoch: {epoch}
Version: {version}
Release: {release}
Summary: fleece fixture package {name}
License: Apache-2.0
BuildArch: {arch}
%description
A package recorded in an rpm database for stackwatch fleece tests.
%files
"""
RPMS = [  # name, epoch, version, release, arch
    ("fleece-release", 0, "9.3", "1.el9", "noarch"),
    ("fleece-bash", 0, "5.1.8", "6.el9_1", "noarch"),
    ("fleece-openssl", 1, "3.0.7", "24.el9", "noarch"),
    ("fleece-shadow-utils", 2, "4.9", "8.el9", "noarch"),
    ("fleece-systemd", 0, "252", "18.el9", "noarch"),
    ("fleece-kernel-core", 0, "5.14.0", "362.8.1.el9_3", "noarch"),
]


def build_rpm_root(root: Path, work: Path) -> dict:
    top = work / "rpmbuild"
    for name, epoch, version, release, arch in RPMS:
        spec = work / f"{name}.spec"
        spec.write_text(SPEC.format(name=name, epoch=epoch, version=version, release=release, arch=arch))
        run(
            "rpmbuild",
            "-bb",
            "--quiet",
            "--define",
            f"_topdir {top}",
            "--define",
            "_build_id_links none",
            spec,
            stderr=subprocess.DEVNULL,
        )
    for d in (
        "etc/systemd/system/multi-user.target.wants",
        "etc/systemd/system/sockets.target.wants",
        "usr/lib/systemd/system",
        "usr/lib/modules",
        "boot",
        "var/lib/rpm",
        "home/carol",
        "root",
        "tmp",
        "usr/bin",
    ):
        (root / d).mkdir(parents=True, exist_ok=True)
    for rel, target in (("lib", "usr/lib"), ("bin", "usr/bin")):
        (root / rel).symlink_to(target)
    (root / "usr/lib/os-release").write_text(
        'NAME="Fleece Enterprise Linux"\nVERSION="9.3 (Fixture)"\nID="fleecel"\nID_LIKE="rhel fedora"\n'
        'VERSION_ID="9.3"\nPRETTY_NAME="Fleece Enterprise Linux 9.3 (Fixture)"\n'
    )
    (root / "etc/os-release").symlink_to("../usr/lib/os-release")
    (root / "etc/redhat-release").write_text("Fleece Enterprise Linux release 9.3 (Fixture)\n")
    (root / "etc/hostname").write_text("rpm-host\n")
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1:bin:/bin:/sbin/nologin\n"
        "sshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/sbin/nologin\n"
        "carol:x:1000:1000:Carol:/home/carol:/bin/bash\n"
    )
    (root / "etc/group").write_text("root:x:0:\nbin:x:1:\nwheel:x:10:carol\nsshd:x:74:\ncarol:x:1000:\n")
    (root / "etc/shadow").write_text(f"root:!!:19000::::::\ncarol:{SHADOW_SECRET}:19000:0:99999:7:::\n")
    for unit, target in (
        ("sshd.service", "multi-user"),
        ("crond.service", "multi-user"),
        ("sshd.socket", "sockets"),
    ):
        (root / "usr/lib/systemd/system" / unit).write_text("[Unit]\nDescription=fixture\n")
        (root / f"etc/systemd/system/{target}.target.wants" / unit).symlink_to(f"/usr/lib/systemd/system/{unit}")
    (root / "boot/vmlinuz-5.14.0-362.8.1.el9_3.x86_64").write_bytes(b"not a kernel\n")
    (root / "usr/lib/modules/5.14.0-362.8.1.el9_3.x86_64").mkdir()
    rpm = ["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "--define", "_db_backend sqlite"]
    run(*rpm, "--initdb")
    run(
        *rpm,
        "-i",
        "--justdb",
        "--nodeps",
        "--noscripts",
        "--ignorearch",
        *sorted((top / "RPMS").rglob("*.rpm")),
    )
    out = run(*rpm, "-qa", "--qf", "%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n")
    pkgs = []
    for line in out.splitlines():
        name, epoch, version, release, arch = line.split("\t")
        pkgs.append({"name": name, "epoch": int(epoch), "version": version, "release": release, "arch": arch})
    for p in (root / "var/lib/rpm").glob("*-shm"):
        p.unlink()
    return root_record(root, "rpm", pkgs)


def build_bdb_root(rtree: Path, root: Path) -> dict:
    """A copy of the rpm root as RHEL 8 keeps it: /var/lib/rpm/Packages (BerkeleyDB), no rpmdb.sqlite.
    Its manifest packages come from rpm's own read-only BerkeleyDB backend reading that file."""
    shutil.copytree(rtree, root, symlinks=True)
    dbdir = root / "var/lib/rpm"
    for p in dbdir.glob("rpmdb.sqlite*"):
        p.unlink()
    run(sys.executable, HERE / "mkrpmbdb.py", rtree / "var/lib/rpm/rpmdb.sqlite", dbdir / "Packages")
    (root / "usr/lib/os-release").write_text(
        'NAME="Fleece Enterprise Linux"\nVERSION="8.9 (Fixture)"\nID="fleecel"\nID_LIKE="rhel fedora"\n'
        'VERSION_ID="8.9"\nPRETTY_NAME="Fleece Enterprise Linux 8.9 (Fixture)"\n'
    )
    (root / "etc/redhat-release").write_text("Fleece Enterprise Linux release 8.9 (Fixture)\n")
    (root / "etc/hostname").write_text("rpm8-host\n")
    (root / "etc/fstab").write_text("LABEL=rpm8root / ext4 defaults 1 1\n")
    out = run(
        "rpm",
        "--dbpath",
        dbdir,
        "--define",
        "_db_backend bdb_ro",
        "-qa",
        "--qf",
        "%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\n",
        stderr=subprocess.DEVNULL,
    )
    pkgs = []
    for line in out.splitlines():
        name, epoch, version, release, arch = line.split("\t")
        pkgs.append({"name": name, "epoch": int(epoch), "version": version, "release": release, "arch": arch})
    return root_record(root, "rpm", pkgs)


# ---------------------------------------------------------------- filesystems and disks


def file_size_mib(tree: Path, extra: int = 160) -> int:
    total = int(run("du", "-sm", "--apparent-size", tree).split()[0])
    return total + extra


def mkfs_ext4(tree: Path, out: Path, label: str, n: int, fstype: str = "ext4") -> Path:
    size = file_size_mib(tree)
    out.unlink(missing_ok=True)
    run("truncate", "-s", f"{size}M", out)
    run(
        f"mkfs.{fstype}",
        "-q",
        "-F",
        "-L",
        label,
        "-U",
        FIXED_UUID.format(n),
        "-E",
        f"hash_seed={HASH_SEED}",
        "-d",
        tree,
        out,
        stderr=subprocess.STDOUT,
    )
    return out


def mkfs_xfs(tree: Path, out: Path, label: str, work: Path) -> Path:
    size = max(file_size_mib(tree, 200), 300)
    proto = work / f"{out.name}.proto"
    with proto.open("w") as f:
        subprocess.run(
            [sys.executable, str(HERE / "mkxfsproto.py"), str(tree)],
            check=True,
            stdout=f,
            stderr=subprocess.DEVNULL,
        )
    out.unlink(missing_ok=True)
    run("truncate", "-s", f"{size}M", out)
    run("mkfs.xfs", "-q", "-f", "-L", label, "-p", proto, out, stderr=subprocess.STDOUT)
    return out


def mkdisk(out: Path, label: str, *parts: str) -> Path:
    run("bash", HERE / "mkdisk.sh", out, label, *parts, stderr=subprocess.DEVNULL)
    return out


def mklvm(out: Path, vg: str, *lvs: str) -> Path:
    args = []
    for lv in lvs:
        args += ["--lv", lv]
    run(sys.executable, HERE / "mklvm2pv.py", out, "--vg", vg, *args)
    return out


def qemu_img(src: Path, out: Path, fmt: str, *opts: str) -> Path:
    out.unlink(missing_ok=True)
    run("qemu-img", "convert", "-f", "raw", "-O", fmt, *opts, src, out)
    return out


def set_host(tree: Path, hostname: str, fstab: str) -> None:
    (tree / "etc/hostname").write_text(hostname + "\n")
    (tree / "etc/fstab").write_text(fstab)


def build(out: Path, cache: Path) -> dict:
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "debian"
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir()
    with tarfile.open(debian_tarball(cache)) as t:
        t.extractall(tree, filter="fully_trusted")
    customise_debian(tree)
    deb = root_record(tree, "dpkg", dpkg_packages(tree))
    boot_tree = work / "boot"
    shutil.copytree(tree / "boot", boot_tree, symlinks=True)
    images: dict[str, dict] = {}

    def add(name: str, path: Path, fmt: str, root: str, hostname: str, filesystems: list[dict], **extra) -> None:
        images[name] = {
            "file": path.name,
            "format": fmt,
            "root": root,
            "hostname": hostname,
            "filesystems": filesystems,
            **extra,
        }

    root_fs = [{"type": "ext4", "label": "rootfs", "mountpoint": "/"}]
    # 1. ext4 on GPT (raw and qcow2)
    set_host(tree, "gpt-ext4", "LABEL=rootfs / ext4 defaults 0 1\n")
    fs = mkfs_ext4(tree, work / "ext4.img", "rootfs", 1)
    raw = mkdisk(out / "gpt-ext4.raw", "gpt", "bios:1", f"linux:{fs}")
    add("gpt-ext4-raw", raw, "raw", "debian", "gpt-ext4", root_fs)
    add(
        "gpt-ext4-qcow2",
        qemu_img(raw, out / "gpt-ext4.qcow2", "qcow2"),
        "qcow2",
        "debian",
        "gpt-ext4",
        root_fs,
    )
    # 2. compressed qcow2 of a GPT ext4 disk with its own hostname
    set_host(tree, "compressed", "LABEL=rootfs / ext4 defaults 0 1\n")
    fs = mkfs_ext4(tree, work / "ext4.img", "rootfs", 1)
    raw = mkdisk(work / "compressed.raw", "gpt", f"linux:{fs}")
    add(
        "gpt-ext4-compressed",
        qemu_img(raw, out / "gpt-ext4-compressed.qcow2", "qcow2", "-c"),
        "qcow2",
        "debian",
        "compressed",
        root_fs,
    )
    # 3. ext4 on MBR; also the raw backing file of a nova-style overlay
    set_host(tree, "mbr-ext4", "LABEL=rootfs / ext4 defaults 0 1\n")
    fs = mkfs_ext4(tree, work / "ext4.img", "rootfs", 2)
    base = mkdisk(out / "mbr-ext4.raw", "dos", f"linux:{fs}")
    add("mbr-ext4-raw", base, "raw", "debian", "mbr-ext4", root_fs)
    add(
        "mbr-ext4-qcow2",
        qemu_img(base, out / "mbr-ext4.qcow2", "qcow2"),
        "qcow2",
        "debian",
        "mbr-ext4",
        root_fs,
    )
    # 4. qcow2 overlay on that raw base: same recipe, another hostname; rebase keeps only changed clusters
    set_host(tree, "nova-overlay", "LABEL=rootfs / ext4 defaults 0 1\n")
    fs = mkfs_ext4(tree, work / "ext4.img", "rootfs", 2)
    top = mkdisk(work / "overlay.raw", "dos", f"linux:{fs}")
    # an empty overlay on the new tree, rebased (safe mode) onto the base: only differing clusters get copied
    ov = out / "overlay.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", top, "-F", "raw", ov)
    run("qemu-img", "rebase", "-f", "qcow2", "-b", base.name, "-F", "raw", ov, cwd=out)
    add("qcow2-overlay", ov, "qcow2", "debian", "nova-overlay", root_fs, backing=base.name)
    # 5. XFS on GPT
    set_host(tree, "gpt-xfs", "LABEL=xfsroot / xfs defaults 0 0\n")
    fs = mkfs_xfs(tree, work / "xfs.img", "xfsroot", work)
    raw = mkdisk(work / "gpt-xfs.raw", "gpt", f"linux:{fs}")
    xfs_fs = [{"type": "xfs", "label": "xfsroot", "mountpoint": "/"}]
    add("gpt-xfs", qemu_img(raw, out / "gpt-xfs.qcow2", "qcow2"), "qcow2", "debian", "gpt-xfs", xfs_fs)
    # 6. LVM (linear root + swap LV) with ext4 on GPT, as qcow2 and both vmdk kinds
    set_host(tree, "lvm-ext4", "LABEL=lvroot / ext4 defaults 0 1\n")
    fs = mkfs_ext4(tree, work / "ext4.img", "lvroot", 3)
    pv = mklvm(work / "pv.img", "vg0", f"root={fs}", "swap=64M")
    raw = mkdisk(work / "gpt-lvm.raw", "gpt", "bios:1", f"lvm:{pv}")
    lvm_fs = [{"type": "ext4", "label": "lvroot", "mountpoint": "/"}]
    add(
        "gpt-lvm-ext4",
        qemu_img(raw, out / "gpt-lvm-ext4.qcow2", "qcow2"),
        "qcow2",
        "debian",
        "lvm-ext4",
        lvm_fs,
    )
    add(
        "vmdk-sparse",
        qemu_img(raw, out / "gpt-lvm-ext4-sparse.vmdk", "vmdk", "-o", "subformat=monolithicSparse"),
        "vmdk",
        "debian",
        "lvm-ext4",
        lvm_fs,
    )
    add(
        "vmdk-stream",
        qemu_img(raw, out / "gpt-lvm-ext4-stream.vmdk", "vmdk", "-o", "subformat=streamOptimized"),
        "vmdk",
        "debian",
        "lvm-ext4",
        lvm_fs,
    )
    # the same stream re-laid as VMware streams it: GD and GTs after the grains, named by a footer
    at_end = out / "gpt-lvm-ext4-stream-gd-at-end.vmdk"
    run(sys.executable, HERE / "vmdk_gd_at_end.py", out / "gpt-lvm-ext4-stream.vmdk", at_end)
    add("vmdk-stream-gd-at-end", at_end, "vmdk", "debian", "lvm-ext4", lvm_fs)
    # 7. MBR: ext4 /boot primary + LVM in a logical partition holding an XFS root
    set_host(tree, "mbr-boot-lvm-xfs", "LABEL=boot /boot ext4 defaults 0 2\nLABEL=lvxfs / xfs defaults 0 0\n")
    moved = work / "boot-moved"
    shutil.move(tree / "boot", moved)
    (tree / "boot").mkdir()
    fs = mkfs_xfs(tree, work / "xfs.img", "lvxfs", work)
    shutil.rmtree(tree / "boot")
    shutil.move(moved, tree / "boot")
    bootfs = mkfs_ext4(boot_tree, work / "boot.img", "boot", 4)
    pv = mklvm(work / "pv.img", "sysvg", f"root={fs}")
    raw = mkdisk(work / "mbr-boot-lvm.raw", "dos", f"linux:{bootfs}", f"log-lvm:{pv}")
    add(
        "mbr-boot-lvm-xfs",
        qemu_img(raw, out / "mbr-boot-lvm-xfs.qcow2", "qcow2"),
        "qcow2",
        "debian",
        "mbr-boot-lvm-xfs",
        [
            {"type": "ext4", "label": "boot", "mountpoint": "/boot"},
            {"type": "xfs", "label": "lvxfs", "mountpoint": "/"},
        ],
    )
    # 8. rpm root: XFS on LVM on GPT, sqlite rpmdb
    rtree = work / "rpmroot"
    if rtree.exists():
        shutil.rmtree(rtree)
    rtree.mkdir()
    rpm = build_rpm_root(rtree, work)
    (rtree / "etc/fstab").write_text("/dev/mapper/rhel-root / xfs defaults 0 0\n")
    fs = mkfs_xfs(rtree, work / "rxfs.img", "rhroot", work)
    pv = mklvm(work / "rpv.img", "rhel", f"root={fs}")
    raw = mkdisk(work / "rpm.raw", "gpt", f"lvm:{pv}")
    add(
        "rpm-lvm-xfs",
        qemu_img(raw, out / "rpm-lvm-xfs.qcow2", "qcow2"),
        "qcow2",
        "rpm",
        "rpm-host",
        [{"type": "xfs", "label": "rhroot", "mountpoint": "/"}],
    )
    # 9. a RHEL 8 style root: the same real rpm headers in a BerkeleyDB Packages file, ext4 on MBR
    rpm8 = build_bdb_root(rtree, work / "rpm8root")
    fs = mkfs_ext4(work / "rpm8root", work / "r8.img", "rpm8root", 5)
    raw = mkdisk(work / "rpm8.raw", "dos", f"linux:{fs}")
    add(
        "rpm-bdb-mbr-ext4",
        qemu_img(raw, out / "rpm-bdb-mbr-ext4.qcow2", "qcow2"),
        "qcow2",
        "rpm-bdb",
        "rpm8-host",
        [{"type": "ext4", "label": "rpm8root", "mountpoint": "/"}],
    )
    for img in images.values():
        img["size"] = (out / img["file"]).stat().st_size
    manifest = {
        "roots": {"debian": deb, "rpm": rpm, "rpm-bdb": rpm8},
        "images": images,
        "tools": {
            "mkfs.ext4": run("mkfs.ext4", "-V", stderr=subprocess.STDOUT).splitlines()[0],
            "qemu-img": run("qemu-img", "--version").splitlines()[0],
        },
    }
    shutil.rmtree(work)
    return manifest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("STACKWATCH_FIXTURE_CACHE") or str(Path.home() / ".cache/stackwatch/fleece-fixtures")
    ap.add_argument("--cache", default=default)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"images-{scripts_hash()}"
    if (out / "manifest.json").exists() and not a.force:
        print(out)
        return 0
    if out.exists():
        shutil.rmtree(out)
    for stale in cache.glob("images-*"):  # built by older versions of these scripts
        shutil.rmtree(stale, ignore_errors=True)
    tmp = cache / f".building-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        manifest = build(tmp, cache)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    log(f"built {len(manifest['images'])} images in {out}")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
