"""Hostile images: each must end in a clear error inside the worker's limits, never a crash or a hang."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackwatch.fleece.lvm import lvm_crc
from stackwatch.fleece.worker import Limits, run_isolated

LIMITS = Limits(memory_mib=512, seconds=30)


def fleece(path: Path, limits: Limits = LIMITS) -> dict:
    t = time.monotonic()
    rep = run_isolated(str(path), limits=limits)
    assert time.monotonic() - t < limits.seconds + 5
    return rep


def qcow2_copy(built, tmp_path: Path, name: str = "gpt-ext4-qcow2") -> Path:
    d, m = built
    src = d / m["images"][name]["file"]
    dst = tmp_path / "hostile.qcow2"
    dst.write_bytes(src.read_bytes())
    return dst


def test_truncated_qcow2(built, tmp_path):
    d, m = built
    src = (d / m["images"]["gpt-ext4-qcow2"]["file"]).read_bytes()
    p = tmp_path / "trunc.qcow2"
    p.write_bytes(src[: 4 << 20])
    rep = fleece(p)
    assert rep["os"]["id"] is None
    assert any("short read" in e or "past the end" in e or "outside the file" in e for e in rep["errors"]), rep


def test_truncated_header(tmp_path):
    p = tmp_path / "tiny.qcow2"
    p.write_bytes(b"QFI\xfb\x00\x00")
    rep = fleece(p)
    assert any("not a qcow2 header" in e for e in rep["errors"]), rep["errors"]


def test_qcow2_oversized_l1(built, tmp_path):
    p = qcow2_copy(built, tmp_path)
    with p.open("r+b") as f:
        f.seek(36)
        f.write(struct.pack(">I", 0x4000_0000))  # 1 Gi entries = 8 GiB of L1
    rep = fleece(p)
    assert any("L1 table of 1073741824 entries exceeds" in e for e in rep["errors"]), rep["errors"]


def test_qcow2_cyclic_l1_points_at_itself(built, tmp_path):
    p = qcow2_copy(built, tmp_path)
    with p.open("r+b") as f:
        (l1_off,) = struct.unpack(">Q", (f.seek(40), f.read(8))[1])
        f.seek(l1_off)
        f.write(struct.pack(">Q", l1_off | (1 << 63)))
    rep = fleece(p)
    assert any("points into the header or the L1 table" in e for e in rep["errors"]), rep["errors"]


def test_qcow2_shared_l2_tables(tmp_path):
    p = tmp_path / "tera.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(p), "1T"], check=True)
    with p.open("r+b") as f:
        (l1_off,) = struct.unpack(">Q", (f.seek(40), f.read(8))[1])
        l2 = -(-p.stat().st_size // 0x10000) * 0x10000  # a fresh cluster at the end of the file
        f.truncate(l2 + 0x10000)
        f.seek(l1_off)
        f.write(struct.pack(">QQ", l2, l2))
    rep = fleece(p)
    assert any("shared with another L1 entry" in e for e in rep["errors"]), rep["errors"]


def test_one_terabyte_sparse_qcow2(tmp_path):
    p = tmp_path / "tera.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(p), "1T"], check=True)
    rep = fleece(p)
    assert any("no root filesystem found" in e for e in rep["errors"]), rep["errors"]
    assert rep["io"]["bytes_read"] <= p.stat().st_size


def test_one_terabyte_sparse_raw(tmp_path):
    p = tmp_path / "tera.raw"
    with p.open("wb") as f:
        f.truncate(1 << 40)
    rep = fleece(p)
    assert any("no root filesystem found" in e for e in rep["errors"]), rep["errors"]
    assert rep["io"]["bytes_read"] < 1 << 20


def _pv(tmp_path: Path) -> Path:
    lv = tmp_path / "lv.img"
    with lv.open("wb") as f:
        f.truncate(4 << 20)
    pv = tmp_path / "pv.img"
    subprocess.run(
        [
            sys.executable,
            str(Path(__file__).parents[2] / "scripts/fleece/mklvm2pv.py"),
            str(pv),
            "--vg",
            "vg0",
            "--lv",
            f"root={lv}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return pv


def test_lvm_garbage_metadata_bad_checksum(tmp_path):
    pv = _pv(tmp_path)
    with pv.open("r+b") as f:
        f.seek(4096 + 512 + 10)
        f.write(b"\x00garbage{{{\xff")
    rep = fleece(pv)
    assert any("LVM2 metadata text checksum mismatch" in e for e in rep["errors"]), rep["errors"]


def test_lvm_garbage_metadata_with_valid_checksum(tmp_path):
    pv = _pv(tmp_path)
    junk = b"vg0 { logical_volumes { root { segment1 { type = ] } } } } }}}} ][ = = {" + bytes(range(1, 200))
    with pv.open("r+b") as f:
        f.seek(4096 + 512)
        f.write(junk + b"\0")
        mda = bytearray((f.seek(4096), f.read(512))[1])
        struct.pack_into("<QQI", mda, 40, 512, len(junk) + 1, lvm_crc(junk + b"\0"))
        struct.pack_into("<I", mda, 0, lvm_crc(bytes(mda[4:])))
        f.seek(4096)
        f.write(mda)
    rep = fleece(pv)
    assert any("LVM2 metadata" in e for e in rep["errors"]), rep["errors"]


def _small_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "etc/hostname").write_text("hostile\n")
    (root / "etc/systemd/system/multi-user.target.wants/a.service").symlink_to("/lib/systemd/system/a.service")
    return root


def _mkext4(root: Path, out: Path) -> Path:
    with out.open("wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(out)], check=True)
    return out


def test_ext4_directory_loop(tmp_path):
    img = _mkext4(_small_root(tmp_path), tmp_path / "loop.ext4")
    subprocess.run(
        ["debugfs", "-w", "-R", "link /etc/systemd/system /etc/systemd/system/multi-user.target.wants/up", str(img)],
        check=True,
        capture_output=True,
    )
    rep = fleece(img)
    assert rep["hostname"] == "hostile"
    assert any("directory loop" in e for e in rep["errors"]), rep["errors"]
    assert "a.service" in rep["services"]["enabled"]  # what was found before the loop is kept


def test_symlink_loop(tmp_path):
    root = _small_root(tmp_path)
    (root / "etc/os-release").symlink_to("os-release.d/current")
    (root / "etc/os-release.d").mkdir()
    (root / "etc/os-release.d/current").symlink_to("../os-release")
    rep = fleece(_mkext4(root, tmp_path / "symloop.ext4"))
    assert rep["hostname"] == "hostile" and rep["users"][0]["name"] == "root"
    assert any(e.startswith("os: ") and "symlink loop" in e for e in rep["errors"]), rep["errors"]


def test_memory_limit_is_enforced(built):
    d, m = built
    rep = run_isolated(str(d / m["images"]["gpt-ext4-qcow2"]["file"]), limits=Limits(memory_mib=1, seconds=30))
    assert rep["os"]["id"] is None
    assert any("memory limit" in e or "worker died" in e for e in rep["errors"]), rep["errors"]


def test_time_limit_is_enforced(built):
    d, m = built
    t = time.monotonic()
    rep = run_isolated(str(d / m["images"]["gpt-xfs"]["file"]), limits=Limits(seconds=0.001))
    assert time.monotonic() - t < 10
    assert any("time limit reached" in e for e in rep["errors"]), rep["errors"]


@pytest.mark.parametrize("garbage", [b"\x00" * 4096, os.urandom(1 << 16), b"KDMV" + os.urandom(4092)])
def test_garbage_files(tmp_path, garbage):
    p = tmp_path / "garbage.img"
    p.write_bytes(garbage)
    rep = fleece(p)
    assert rep["errors"] and rep["os"]["id"] is None
