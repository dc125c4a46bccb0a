"""Our VMDK readers (streamOptimized, both layouts, and monolithicSparse): same guest bytes as the qcow2 of
the same disk, few reads, and clear errors on broken tables and grains."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from stackwatch.fleece.blockio import BLOCK, LocalReader
from stackwatch.fleece.errors import CorruptImage
from stackwatch.fleece.qcow2 import Qcow2Image
from stackwatch.fleece.vmdk import SECTOR, MonolithicSparseImage, StreamOptimizedImage, read_header
from stackwatch.fleece.worker import run_isolated

STREAMS = ["vmdk-stream", "vmdk-stream-gd-at-end"]
READERS = {"vmdk-stream": StreamOptimizedImage, "vmdk-stream-gd-at-end": StreamOptimizedImage}
READERS["vmdk-sparse"] = MonolithicSparseImage


def _path(built, name: str) -> Path:
    d, m = built
    return d / m["images"][name]["file"]


@pytest.mark.parametrize("name", sorted(READERS))
def test_guest_bytes_match_the_qcow2_of_the_same_disk(built, name):
    """Every 37th grain (and the last) of the vmdk equals the qcow2 built from the same raw disk."""
    vmdk = READERS[name](LocalReader(_path(built, name)))
    qcow = Qcow2Image(LocalReader(_path(built, "gpt-lvm-ext4")))
    assert vmdk.size == qcow.size
    gb = vmdk.header.grain_bytes
    grains = [*range(0, vmdk.n_grains, 37), vmdk.n_grains - 1]
    nonzero = 0
    for g in grains:
        want = qcow.read_buffer_at_offset(gb, g * gb)
        assert vmdk.read_buffer_at_offset(gb, g * gb) == want, f"grain {g}"
        nonzero += any(want)
    assert nonzero > 10  # the comparison covered real data, not only sparse grains
    # an unaligned read across a grain boundary
    assert vmdk.read_buffer_at_offset(5000, gb - 1234) == qcow.read_buffer_at_offset(5000, gb - 1234)


def test_gd_at_end_layout_is_found_through_the_footer(built):
    r = LocalReader(_path(built, "vmdk-stream-gd-at-end"))
    head = r.pread(0, SECTOR)
    assert struct.unpack_from("<Q", head, 56)[0] == 0xFFFF_FFFF_FFFF_FFFF  # GD_AT_END in the header
    h = read_header(r, "x")
    assert h.stream_optimized and h.gd_sector * SECTOR > r.size // 2  # the footer's GD, after the grains


def test_sparse_grain_reads_only_the_bytes_asked_for(built):
    """libvmdk fetched each 64 KiB grain whole; a 4 KiB read must cost one 16 KiB source block, not a grain."""
    src = LocalReader(_path(built, "vmdk-sparse"))
    vmdk = MonolithicSparseImage(src)
    gb = vmdk.header.grain_bytes
    assert gb >= 4 * BLOCK
    qcow = Qcow2Image(LocalReader(_path(built, "gpt-lvm-ext4")))
    g = next(g for g in range(vmdk.n_grains // 2, vmdk.n_grains) if any(qcow.read_buffer_at_offset(gb, g * gb)))
    vmdk._gt(g // vmdk.header.gtes_per_gt)  # its grain table: read once per 32 MiB of guest disk, not counted
    before = src.stats.bytes_read
    assert vmdk.read_buffer_at_offset(4096, g * gb + gb // 2) == qcow.read_buffer_at_offset(4096, g * gb + gb // 2)
    assert src.stats.bytes_read - before == BLOCK


class Recording(LocalReader):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.fetches: list[tuple[int, int]] = []

    def _fetch(self, offset: int, length: int) -> bytes:
        self.fetches.append((offset, length))
        return super()._fetch(offset, length)


@pytest.mark.parametrize("name", STREAMS)
def test_stream_grain_costs_one_exact_span_and_is_inflated_once(built, name):
    """A compressed grain is read from its marker to where a following grain starts, in one request."""
    src = Recording(_path(built, name))
    vmdk = StreamOptimizedImage(src)
    qcow = Qcow2Image(LocalReader(_path(built, "gpt-lvm-ext4")))
    gb = vmdk.header.grain_bytes
    g = next(
        g
        for g in range(vmdk.n_grains)
        if src.size // 4 < vmdk._sector(g) * SECTOR < src.size * 3 // 4  # away from the tables' blocks
    )
    n = len(src.fetches)
    assert vmdk.read_buffer_at_offset(4096, g * gb + 100) == qcow.read_buffer_at_offset(4096, g * gb + 100)
    assert len(src.fetches) == n + 1
    offset, length = src.fetches[-1]
    assert offset == vmdk._sector(g) * SECTOR  # at its marker, not rounded to a block
    starts = {s * SECTOR for t in vmdk._starts.values() for s in t}
    assert offset + length in starts  # up to a grain's marker: whole grains only
    assert vmdk.read_buffer_at_offset(8192, g * gb + 30000) == qcow.read_buffer_at_offset(8192, g * gb + 30000)
    assert len(src.fetches) == n + 1  # the same grain: inflated already


def test_stream_header_is_not_taken_for_a_plain_sparse_extent(built):
    from stackwatch.fleece.errors import UnsupportedFormat

    with pytest.raises(UnsupportedFormat, match="not a plain sparse"):
        MonolithicSparseImage(LocalReader(_path(built, "vmdk-stream")))


@pytest.mark.parametrize("name", [*STREAMS, "vmdk-sparse"])
def test_vmdk_reads_about_what_the_qcow2_reads(built, name):
    """The goal of our reader: <= 40 requests, and bytes within 1.5x of the qcow2 of the same disk."""
    vm = run_isolated(str(_path(built, name)))
    qc = run_isolated(str(_path(built, "gpt-lvm-ext4")))
    assert not vm["errors"] and vm["packages"] == qc["packages"]
    assert vm["io"]["requests"] <= 40
    assert vm["io"]["bytes_read"] <= 1.5 * qc["io"]["bytes_read"], (vm["io"], qc["io"])


def _copy(built, tmp_path: Path, name: str = "vmdk-stream") -> Path:
    p = tmp_path / "hostile.vmdk"
    p.write_bytes(_path(built, name).read_bytes())
    return p


def _gd(p: Path) -> tuple[int, list[int]]:
    h = read_header(LocalReader(p), "x")
    data = p.read_bytes()
    grains = -(-h.capacity // h.grain_sectors)
    n = -(-grains // h.gtes_per_gt)
    return h.gd_sector, list(struct.unpack_from(f"<{n}I", data, h.gd_sector * SECTOR))


def test_grain_table_outside_the_file(built, tmp_path):
    p = _copy(built, tmp_path)
    gd_sector, _ = _gd(p)
    with p.open("r+b") as f:
        f.seek(gd_sector * SECTOR)
        f.write(struct.pack("<I", 0x7FFF_FFFF))
    rep = run_isolated(str(p))
    assert any("grain table at sector 2147483647 is outside or shared" in e for e in rep["errors"]), rep["errors"]


def test_shared_grain_tables(built, tmp_path):
    p = _copy(built, tmp_path)
    gd_sector, gd = _gd(p)
    with p.open("r+b") as f:
        f.seek(gd_sector * SECTOR + 4)
        f.write(struct.pack("<I", gd[0]))
    with pytest.raises(CorruptImage, match="outside or shared"):
        StreamOptimizedImage(LocalReader(p))


def test_grain_marker_with_wrong_lba(built, tmp_path):
    p = _copy(built, tmp_path)
    _, gd = _gd(p)
    data = p.read_bytes()
    first = struct.unpack_from("<I", data, gd[0] * SECTOR)[0]
    with p.open("r+b") as f:
        f.seek(first * SECTOR)
        f.write(struct.pack("<Q", 999))
    img = StreamOptimizedImage(LocalReader(p))
    with pytest.raises(CorruptImage, match="marker says LBA 999"):
        img.read_buffer_at_offset(512, 0)
    rep = run_isolated(str(p))
    assert rep["os"]["id"] is None and any("marker says LBA 999" in e for e in rep["errors"]), rep["errors"]


def test_truncated_stream(built, tmp_path):
    p = tmp_path / "trunc.vmdk"
    p.write_bytes(_path(built, "vmdk-stream-gd-at-end").read_bytes()[: 8 << 20])
    rep = run_isolated(str(p))
    assert rep["os"]["id"] is None
    assert any("footer" in e or "outside the file" in e for e in rep["errors"]), rep["errors"]
