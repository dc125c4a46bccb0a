"""Disk containers: raw, qcow2 (our reader, see qcow2.py for why not libqcow), vmdk monolithicSparse and
streamOptimized (our reader, see vmdk.py for why not libvmdk).

`open_disk(reader, open_backing)` returns a reader of the guest-visible disk. `open_backing(name)` opens
a backing file named in a qcow2 header relative to where the image came from (a sibling path, URL or
SFTP path); chains are bounded and may not revisit a file.
"""

from __future__ import annotations

from collections.abc import Callable

from stackwatch.fleece.blockio import BlockReader, ObjectReader
from stackwatch.fleece.errors import CorruptImage, LimitExceeded, UnsupportedFormat
from stackwatch.fleece.qcow2 import MAGIC as QCOW_MAGIC
from stackwatch.fleece.qcow2 import Qcow2Image, check_header

VMDK_MAGIC = b"KDMV"
MAX_CHAIN = 16
MAX_VIRTUAL = 1 << 50  # 1 PiB: anything larger is a lie

Opener = Callable[[str], BlockReader]


def detect(reader) -> str:
    head = reader.pread(0, 64)
    if head[:4] == QCOW_MAGIC:
        return "qcow2"
    if head[:4] == VMDK_MAGIC:
        return "vmdk"
    if head.startswith(b"# Disk DescriptorFile"):
        return "vmdk-descriptor"
    return "raw"


def open_disk(reader: BlockReader, open_backing: Opener | None = None) -> tuple[str, BlockReader]:
    """(format, guest disk reader) for an image."""
    fmt = detect(reader)
    if fmt == "raw":
        return "raw", reader
    if fmt == "qcow2":
        return "qcow2", _open_qcow2(reader, open_backing, seen=[reader.name])
    if fmt == "vmdk":
        return "vmdk", _open_vmdk(reader)
    if fmt == "vmdk-descriptor":
        raise UnsupportedFormat(
            f"{reader.name}: a VMDK descriptor file with separate extents; "
            "use a monolithicSparse or streamOptimized vmdk"
        )
    raise UnsupportedFormat(f"{reader.name}: container format {fmt} is not supported")


def _open_qcow2(reader: BlockReader, open_backing: Opener | None, seen: list[str]) -> BlockReader:
    h = check_header(reader, reader.name)
    if h.size > MAX_VIRTUAL:
        raise LimitExceeded(f"{reader.name}: qcow2 virtual size {h.size} is beyond any real disk")
    if h.backing_file is None:
        img = Qcow2Image(reader, None, reader.name)
        return ObjectReader(img, img.size, name=f"{reader.name}[qcow2]")
    if open_backing is None:
        raise UnsupportedFormat(f"{reader.name}: has backing file {h.backing_file!r} but the source cannot open it")
    if len(seen) >= MAX_CHAIN:
        raise LimitExceeded(f"{reader.name}: backing chain longer than {MAX_CHAIN}: {' -> '.join(seen)}")
    base = open_backing(h.backing_file)
    if base.name in seen:
        raise CorruptImage(f"{reader.name}: backing chain loops back to {base.name}")
    fmt = detect(base)
    if fmt == "qcow2":
        base = _open_qcow2(base, open_backing, seen + [base.name])
    elif fmt != "raw":
        raise UnsupportedFormat(f"{reader.name}: backing file {h.backing_file} is {fmt}")
    img = Qcow2Image(reader, base, reader.name)
    return ObjectReader(img, img.size, name=f"{reader.name}[qcow2+{h.backing_file}]")


def _open_vmdk(reader: BlockReader) -> BlockReader:
    from stackwatch.fleece.vmdk import MonolithicSparseImage, StreamOptimizedImage, read_header

    if read_header(reader, reader.name).stream_optimized:
        img: StreamOptimizedImage = StreamOptimizedImage(reader, reader.name)
        kind = "vmdk-stream"
    else:
        img = MonolithicSparseImage(reader, reader.name)
        kind = "vmdk"
    if img.size > MAX_VIRTUAL:
        raise LimitExceeded(f"{reader.name}: vmdk virtual size {img.size} is beyond any real disk")
    return ObjectReader(img, img.size, name=f"{reader.name}[{kind}]")
