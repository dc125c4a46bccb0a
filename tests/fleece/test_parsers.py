"""Our own parsers on crafted input: MBR chains, dpkg/apk/rpm records, LVM text, os-release."""

from __future__ import annotations

import struct

import pytest

from stackwatch.fleece import mbr
from stackwatch.fleece.errors import CorruptImage
from stackwatch.fleece.inspect import apk, dpkg, release, rpmdb
from stackwatch.fleece.lvm import logical_volumes, parse_text


class Bytes:
    name = "mem"

    def __init__(self, data: bytes) -> None:
        self.data, self.size = data, len(data)

    def pread(self, off: int, n: int) -> bytes:
        return self.data[off : off + n]


def _sector(entries) -> bytes:
    s = bytearray(512)
    for i, (t, lba, n) in enumerate(entries):
        struct.pack_into("<B3xB3xII", s, 446 + 16 * i, 0, t, lba, n)
    s[510:512] = b"\x55\xaa"
    return bytes(s)


def _disk(sectors: dict[int, bytes], total: int = 4096) -> Bytes:
    d = bytearray(total * 512)
    for n, s in sectors.items():
        d[n * 512 : (n + 1) * 512] = s
    return Bytes(bytes(d))


def test_mbr_extended_chain():
    disk = _disk(
        {
            0: _sector([(0x83, 2048, 100), (0x05, 200, 1000)]),
            200: _sector([(0x8E, 1, 50), (0x05, 100, 60)]),
            300: _sector([(0x83, 1, 40)]),
        }
    )
    parts = mbr.parse(disk, disk.size)
    assert [(p.number, p.type, p.start // 512, p.size // 512) for p in parts] == [
        (1, 0x83, 2048, 100),
        (5, 0x8E, 201, 50),
        (6, 0x83, 301, 40),
    ]


def test_mbr_extended_loop_is_an_error():
    disk = _disk({0: _sector([(0x05, 200, 1000)]), 200: _sector([(0x83, 1, 5), (0x05, 0, 10)])})
    with pytest.raises(CorruptImage, match="loops"):
        mbr.parse(disk, disk.size)


def test_mbr_partition_past_end():
    disk = _disk({0: _sector([(0x83, 2048, 1 << 30)])})
    with pytest.raises(CorruptImage, match="past the end"):
        mbr.parse(disk, disk.size)


def test_dpkg_versions_and_status():
    text = (
        "Package: a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:2.3-4+deb12u1\n\n"
        "Package: b\nStatus: deinstall ok config-files\nVersion: 1\n\n"
        "Package: c\nStatus: install ok installed\nArchitecture: all\nVersion: 20230101\n"
    )
    pkgs = dpkg.parse_status(text)
    assert pkgs == [
        {"name": "a", "epoch": 1, "version": "2.3", "release": "4+deb12u1", "arch": "amd64", "manager": "dpkg"},
        {"name": "c", "epoch": 0, "version": "20230101", "release": "", "arch": "all", "manager": "dpkg"},
    ]
    assert dpkg.split_version("2:1.0-rc1-3") == (2, "1.0-rc1", "3")


def test_apk_installed():
    pkgs = apk.parse_installed("C:Q1x\nP:musl\nV:1.2.4-r2\nA:x86_64\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\n")
    assert [(p["name"], p["version"], p["release"]) for p in pkgs] == [
        ("musl", "1.2.4", "r2"),
        ("busybox", "1.36.1", "r5"),
    ]


def _rpm_header(tags: dict[int, object]) -> bytes:
    index, data = [], b""
    for tag, val in tags.items():
        if isinstance(val, int):
            data += b"\0" * (-len(data) % 4)
            index.append(struct.pack(">iIiI", tag, 4, len(data), 1))
            data += struct.pack(">I", val)
        else:
            index.append(struct.pack(">iIiI", tag, 6, len(data), 1))
            data += val.encode() + b"\0"
    return struct.pack(">II", len(index), len(data)) + b"".join(index) + data


def test_rpm_header_blob():
    blob = _rpm_header({1000: "openssl", 1001: "3.0.7", 1002: "24.el9", 1003: 1, 1022: "x86_64"})
    assert rpmdb.parse_header(blob) == {
        "name": "openssl",
        "epoch": 1,
        "version": "3.0.7",
        "release": "24.el9",
        "arch": "x86_64",
        "manager": "rpm",
    }
    with pytest.raises(CorruptImage):
        rpmdb.parse_header(struct.pack(">II", 1000, 1 << 30))


def test_rpm_bdb_rejects_non_bdb():
    with pytest.raises(CorruptImage, match="not a BerkeleyDB"):
        rpmdb.from_bdb(b"\0" * 4096)


def test_lvm_text_segment_types():
    text = """vg0 {
      id = "x"  # comment
      logical_volumes {
        root { segment_count = 1
          segment1 { start_extent = 0 extent_count = 10 type = "striped" stripe_count = 1 stripes = ["pv0", 0] } }
        data { segment_count = 1
          segment1 { start_extent = 0 extent_count = 10 type = "raid1" } }
      }
    }"""
    vg, lvs = logical_volumes(text)
    assert vg == "vg0"
    assert [(lv.name, lv.linear, lv.segment_types) for lv in lvs] == [
        ("root", True, ("striped",)),
        ("data", False, ("raid1",)),
    ]
    with pytest.raises(CorruptImage):
        parse_text("vg0 { a = ] }")


def test_os_release_quoting():
    osr = release.parse_os_release('NAME="Rocky Linux"\nVERSION_ID="9.3"\nID=rocky\nPRETTY_NAME=\'Rocky 9\'\n')
    assert osr == {"NAME": "Rocky Linux", "VERSION_ID": "9.3", "ID": "rocky", "PRETTY_NAME": "Rocky 9"}
