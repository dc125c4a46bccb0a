"""Compressed qcow2 clusters: exact bytes, only their compressed span read, inflated once, sequential read-ahead.

The image is made by `qemu-img convert -c` from a raw disk whose clusters compress to a few KiB each, so a
reader that rounds a cluster out to source blocks (16 KiB) or reads ahead in blocks shows up in the counts.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from stackwatch.fleece.blockio import BLOCK, LocalReader
from stackwatch.fleece.inflated import READ_MAX, ZAHEAD
from stackwatch.fleece.qcow2 import COMPRESSED, Qcow2Image

CLUSTER = 64 * 1024
CLUSTERS = 96


@pytest.fixture(scope="module")
def compressed(tmp_path_factory) -> tuple[bytes, Path]:
    if not shutil.which("qemu-img"):
        pytest.skip("qemu-img is not installed (scripts/fleece/install-tools.sh)")
    rnd = random.Random(5)
    words = [os.urandom(8) for _ in range(4)]  # a small vocabulary: each cluster deflates to a few KiB
    raw = b"".join(b"".join(rnd.choice(words) for _ in range(CLUSTER // 8)) for _ in range(CLUSTERS))
    d = tmp_path_factory.mktemp("zqcow2")
    (d / "disk.raw").write_bytes(raw)
    subprocess.run(
        ["qemu-img", "convert", "-q", "-c", "-f", "raw", "-O", "qcow2", str(d / "disk.raw"), str(d / "disk.qcow2")],
        check=True,
    )
    return raw, d / "disk.qcow2"


def _span_bytes(img: Qcow2Image, cluster: int) -> int:
    e = img._l2_entry(cluster)
    assert e & COMPRESSED, "qemu-img -c left this cluster uncompressed"
    return img._span(e)[1]


def test_compressed_reads_are_exact(compressed):
    raw, path = compressed
    img = Qcow2Image(LocalReader(path))
    rnd = random.Random(1)
    for _ in range(200):
        off = rnd.randrange(len(raw) - 1)
        n = rnd.randrange(1, 3 * CLUSTER)
        assert img.read_buffer_at_offset(n, off) == raw[off : off + n]


class Recording(LocalReader):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.fetches: list[tuple[int, int]] = []

    def _fetch(self, offset: int, length: int) -> bytes:
        self.fetches.append((offset, length))
        return super()._fetch(offset, length)


def test_one_cluster_costs_whole_compressed_spans_not_blocks(compressed):
    raw, path = compressed
    src = Recording(path)
    img = Qcow2Image(src)
    img.read_buffer_at_offset(1, 0)  # header, L1 and the L2 slice are read and cached
    n = len(src.fetches)
    assert img.read_buffer_at_offset(4096, 40 * CLUSTER + 100) == raw[40 * CLUSTER + 100 : 40 * CLUSTER + 4196]
    assert len(src.fetches) == n + 1
    offset, length = src.fetches[-1]
    host, span = img._span(img._l2_entry(40))
    assert offset == host and offset % BLOCK  # starts at the cluster's data, not at a block boundary
    ends = {h + ln for h, ln in (img._span(img._l2_entry(c)) for c in range(40, 40 + READ_MAX))}
    assert offset + length in ends  # ends with a whole compressed cluster (read ahead), not a block
    assert span <= length <= span + ZAHEAD, (span, length)
    # another part of the same cluster is inflated already: no request at all
    assert img.read_buffer_at_offset(8192, 40 * CLUSTER + 30000) == raw[40 * CLUSTER + 30000 : 40 * CLUSTER + 38192]
    assert len(src.fetches) == n + 1


def test_sequential_read_grows_the_readahead(compressed):
    raw, path = compressed
    src = LocalReader(path)
    img = Qcow2Image(src)
    img.read_buffer_at_offset(1, 0)
    before = src.stats.bytes_read, src.stats.requests
    first, count = 8, 64
    for c in range(first, first + count):  # 4 MiB read cluster by cluster, as a file's data is
        assert img.read_buffer_at_offset(CLUSTER, c * CLUSTER) == raw[c * CLUSTER : (c + 1) * CLUSTER]
    got, req = src.stats.bytes_read - before[0], src.stats.requests - before[1]
    fixed = -(-count // ((ZAHEAD // _span_bytes(img, first)) + 1))  # requests of a fixed ZAHEAD read-ahead
    assert req < fixed / 2, (req, fixed)
    spans = sum(_span_bytes(img, c) for c in range(first, first + count + READ_MAX))
    assert got <= spans, (got, spans)  # read ahead at most READ_MAX clusters past the last one


def test_a_cluster_past_the_end_of_the_file_is_corrupt(compressed, tmp_path):
    from stackwatch.fleece.errors import CorruptImage

    _, path = compressed
    img = Qcow2Image(LocalReader(path))
    e = img._l2_entry(3)
    x = 62 - (img.header.cluster_bits - 8)
    host = e & ((1 << x) - 1)
    data = bytearray(path.read_bytes())
    l2_off = img._l1[0] & 0x00FF_FFFF_FFFF_FE00
    bad = (e & ~((1 << x) - 1)) | (len(data) + 4 * CLUSTER)  # same sector count, host offset past the end
    assert host != bad & ((1 << x) - 1)
    data[l2_off + 3 * 8 : l2_off + 4 * 8] = bad.to_bytes(8, "big")
    p = tmp_path / "past-end.qcow2"
    p.write_bytes(bytes(data))
    with pytest.raises(CorruptImage, match="past the end of the file"):
        Qcow2Image(LocalReader(p)).read_buffer_at_offset(10, 3 * CLUSTER)
