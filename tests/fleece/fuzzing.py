"""Shared by test_fuzz.py (short, in CI) and scripts/fleece/fuzz.py (long runs): seeds and one-shot targets.

Targets run our own container and volume parsers in-process on a mutated seed; anything other than a
FleeceError (or a clean result) is a bug.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from pathlib import Path

from stackwatch.fleece import lvm, mbr
from stackwatch.fleece.errors import FleeceError
from stackwatch.fleece.qcow2 import Qcow2Image
from stackwatch.fleece.vmdk import MonolithicSparseImage, StreamOptimizedImage

REPO = Path(__file__).resolve().parents[2]


class Mem:
    name = "fuzz"

    def __init__(self, data: bytes) -> None:
        self.data, self.size = data, len(data)

    def pread(self, off: int, n: int) -> bytes:
        return self.data[off : off + max(0, n)] if off >= 0 else b""


def seeds() -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        q = Path(tmp) / "s.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(q), "3G"], check=True)
        subprocess.run(
            ["qemu-io", "-c", "write -P 0x5a 0 128k", "-c", "write -P 0x33 2G 64k", str(q)],
            check=False,
            capture_output=True,
        )
        lv = Path(tmp) / "lv"
        lv.write_bytes(b"\0" * 4096)
        pv = Path(tmp) / "pv"
        subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts/fleece/mklvm2pv.py"),
                str(pv),
                "--vg",
                "vg0",
                "--lv",
                f"root={lv}",
                "--lv",
                "swap=4M",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        raw = Path(tmp) / "s.raw"
        raw.write_bytes(bytes(range(256)) * 1024 + b"\0" * (1 << 20) + b"fleece" * 40000)
        vm = Path(tmp) / "s.vmdk"
        subprocess.run(
            ["qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", str(raw), str(vm)],
            check=True,
        )
        vmdk = vm.read_bytes()
        qz, vs = Path(tmp) / "z.qcow2", Path(tmp) / "s-sparse.vmdk"
        subprocess.run(["qemu-img", "convert", "-q", "-c", "-f", "raw", "-O", "qcow2", str(raw), str(qz)], check=True)
        subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", str(raw), str(vs)], check=True)
        qcow_z, vmdk_sparse = qz.read_bytes(), vs.read_bytes()
        qcow = q.read_bytes()
        pvb = pv.read_bytes()[: 64 << 10]
    sector = bytearray(512)
    for i, (t, lba, n) in enumerate([(0x83, 2048, 2048), (0x05, 4096, 8192)]):
        sector[446 + 16 * i + 4] = t
        sector[446 + 16 * i + 8 : 446 + 16 * i + 16] = lba.to_bytes(4, "little") + n.to_bytes(4, "little")
    sector[510:512] = b"\x55\xaa"
    ebr = bytearray(sector)
    ebr[446:478] = bytes(32)
    ebr[446 + 4] = 0x83
    ebr[446 + 8 : 446 + 16] = (1).to_bytes(4, "little") + (100).to_bytes(4, "little")
    disk = bytearray(16384 * 512)
    disk[:512] = sector
    disk[4096 * 512 : 4097 * 512] = ebr
    return {
        "qcow2": qcow,
        "qcow2z": qcow_z,
        "lvm": pvb,
        "mbr": bytes(disk[: 4097 * 512]),
        "vmdk": vmdk,
        "vmdk-sparse": vmdk_sparse,
    }


def run_qcow2(data: bytes) -> None:
    img = Qcow2Image(Mem(data))
    for off in (0, 1 << 20, 2 << 30):
        img.read_buffer_at_offset(4096, off)


def run_qcow2z(data: bytes) -> None:
    """Compressed clusters: scattered, then sequential reads (the exact-span read-ahead path)."""
    img = Qcow2Image(Mem(data))
    for off in (1 << 20, 0, *range(64 << 10, 1 << 20, 64 << 10)):
        img.read_buffer_at_offset(4096, off)


def run_vmdk(data: bytes) -> None:
    img = StreamOptimizedImage(Mem(data))
    for off in (0, 300 << 10, 1 << 20, *range(64 << 10, 640 << 10, 64 << 10)):
        img.read_buffer_at_offset(4096, off)


def run_vmdk_sparse(data: bytes) -> None:
    img = MonolithicSparseImage(Mem(data))
    for off in (0, 300 << 10, 1 << 20):
        img.read_buffer_at_offset(4096, off)


def run_mbr(data: bytes) -> None:
    if mbr.has_mbr(data[:512]):
        mbr.parse(Mem(data), 16384 * 512)


def run_lvm(data: bytes) -> None:
    lvm.logical_volumes(lvm.read_metadata(Mem(data)))


TARGETS = {
    "qcow2": run_qcow2,
    "qcow2z": run_qcow2z,
    "mbr": run_mbr,
    "lvm": run_lvm,
    "vmdk": run_vmdk,
    "vmdk-sparse": run_vmdk_sparse,
}
# mutations go to the first HEADERS[kind] bytes: headers, tables, and (qcow2z, vmdk) the first grains
HEADERS = {
    "qcow2": 0x30000 + 64,
    "qcow2z": 0x50000 + 8192,
    "mbr": 4097 * 512,
    "lvm": 8192,
    "vmdk": 128 * 512 + 4096,
    "vmdk-sparse": 0x30000 + 4096,
}


def mutate(seed: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    b = bytearray(seed)
    for pos, val in edits:
        b[pos % len(b)] = val
    return bytes(b[:cut] if cut else b)


def check(kind: str, data: bytes) -> None:
    """Raise AssertionError only for an unexpected exception type."""
    with contextlib.suppress(FleeceError):
        TARGETS[kind](data)
