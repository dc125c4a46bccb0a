"""Disk containers: raw, qcow2 (our reader, see qcow2.py for why not libqcow), vmdk monolithicSparse and
streamOptimized (our reader, see vmdk.py for why not libvmdk).

`open_disk(reader, open_backing)` returns a reader of the guest-visible disk. `open_backing(name, image)`
opens a backing file named in the header of `image`, only inside the source the image came from
(targets.py, backing.py); chains are bounded (MAX_CHAIN) and may not revisit a file (readers' `identity`).
"""

from __future__ import annotations

from collections.abc import Callable

from stackwatch.fleece.blockio import BlockReader, ObjectReader
from stackwatch.fleece.errors import CorruptImage, LimitExceeded, UnsupportedFormat
from stackwatch.fleece.qcow2 import MAGIC as QCOW_MAGIC
from stackwatch.fleece.qcow2 import Header, Qcow2Image, check_header

VMDK_MAGIC = b"KDMV"
MAX_CHAIN = 16  # files in one backing chain, the image included (Nova's are 2: disk -> _base/<hash>)
MAX_VIRTUAL = 1 << 50  # 1 PiB: anything larger is a lie

Opener = Callable[[str, BlockReader], BlockReader]  # (backing file name, the image whose header names it)


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
        return "qcow2", _open_qcow2(reader, open_backing)
    if fmt == "vmdk":
        return "vmdk", _open_vmdk(reader)
    if fmt == "vmdk-descriptor":
        raise UnsupportedFormat(
            f"{reader.name}: a VMDK descriptor file with separate extents; "
            "use a monolithicSparse or streamOptimized vmdk"
        )
    raise UnsupportedFormat(f"{reader.name}: container format {fmt} is not supported")


def _open_qcow2(reader: BlockReader, open_backing: Opener | None) -> BlockReader:
    """The guest view of a qcow2 over its backing chain, opened top-down in a loop (no recursion), at most
    MAX_CHAIN files deep, never the same file twice (a loop), then stacked bottom-up."""
    chain: list[tuple[BlockReader, Header]] = [(reader, check_header(reader, reader.name))]
    seen = {reader.identity or reader.name}
    base: BlockReader | None = None  # a raw file at the bottom of the chain
    while chain[-1][1].backing_file is not None:
        image, h = chain[-1]
        name = h.backing_file
        if open_backing is None:
            raise UnsupportedFormat(f"{image.name}: has backing file {name!r} but the source cannot open it")
        if len(chain) >= MAX_CHAIN:
            names = " -> ".join(r.name for r, _ in chain)
            raise LimitExceeded(f"{reader.name}: backing chain deeper than {MAX_CHAIN} files ({names} -> {name} ...)")
        below = open_backing(name, image)
        key = below.identity or below.name
        if key in seen:
            raise CorruptImage(f"{image.name}: backing chain loops back to {below.name} (named {name!r})")
        seen.add(key)
        fmt = detect(below)
        if fmt == "raw":
            base = below
            break
        if fmt != "qcow2":
            raise UnsupportedFormat(f"{image.name}: backing file {name} is {fmt}")
        chain.append((below, check_header(below, below.name)))
    for image, h in reversed(chain):
        if h.size > MAX_VIRTUAL:
            raise LimitExceeded(f"{image.name}: qcow2 virtual size {h.size} is beyond any real disk")
        img = Qcow2Image(image, base, image.name)
        label = f"{image.name}[qcow2+{h.backing_file}]" if h.backing_file is not None else f"{image.name}[qcow2]"
        base = ObjectReader(img, img.size, name=label)
    assert base is not None
    return base


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
