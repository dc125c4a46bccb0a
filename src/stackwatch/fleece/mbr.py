"""MBR partition tables, including the chain of extended boot records (logical partitions).

Why our own parser: libvsmbr-python ships only a 2024 sdist and no wheel, so it cannot be a dependency
that installs everywhere; the format is 64 bytes of table per sector and easy to bound against loops.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from stackwatch.fleece.errors import CorruptImage

SECTOR = 512
EXTENDED = {0x05, 0x0F, 0x85}
PROTECTIVE_GPT = 0xEE
MAX_LOGICAL = 128


@dataclass(frozen=True)
class MbrPartition:
    number: int  # 1-4 primary, 5.. logical, as Linux numbers them
    type: int
    start: int  # bytes
    size: int  # bytes


def _entries(sector: bytes) -> list[tuple[int, int, int]]:
    out = []
    for i in range(4):
        _status, ptype, lba, count = struct.unpack_from("<B3xB3xII", sector, 446 + 16 * i)
        out.append((ptype, lba, count))
    return out


def has_mbr(sector0: bytes) -> bool:
    """A boot signature and at least one sane entry (a bare FAT boot sector has the signature too)."""
    if len(sector0) < SECTOR or sector0[510:512] != b"\x55\xaa":
        return False
    return any(ptype and count for ptype, _, count in _entries(sector0)) and all(
        sector0[446 + 16 * i] in (0x00, 0x80) for i in range(4)
    )


def is_protective(sector0: bytes) -> bool:
    return any(ptype == PROTECTIVE_GPT for ptype, _, _ in _entries(sector0))


def parse(reader, disk_size: int) -> list[MbrPartition]:
    """Primary and logical partitions; raises CorruptImage for tables pointing outside the disk or looping."""
    name = getattr(reader, "name", "disk")
    parts: list[MbrPartition] = []
    ext_start = None
    for i, (ptype, lba, count) in enumerate(_entries(reader.pread(0, SECTOR)), start=1):
        if not ptype or not count:
            continue
        if (lba + count) * SECTOR > disk_size:
            raise CorruptImage(f"{name}: MBR partition {i} ends past the end of the disk")
        if ptype in EXTENDED:
            if ext_start is not None:
                raise CorruptImage(f"{name}: MBR has more than one extended partition")
            ext_start, ext_count = lba, count
            continue
        parts.append(MbrPartition(i, ptype, lba * SECTOR, count * SECTOR))
    if ext_start is None:
        return parts
    seen: set[int] = set()
    ebr, number = ext_start, 5
    while ebr is not None:
        if ebr in seen:
            raise CorruptImage(f"{name}: extended partition chain loops at sector {ebr}")
        if len(seen) >= MAX_LOGICAL:
            raise CorruptImage(f"{name}: more than {MAX_LOGICAL} logical partitions")
        if not ext_start <= ebr < ext_start + ext_count:
            raise CorruptImage(f"{name}: extended boot record at sector {ebr} lies outside the extended partition")
        seen.add(ebr)
        sector = reader.pread(ebr * SECTOR, SECTOR)
        if sector[510:512] != b"\x55\xaa":
            raise CorruptImage(f"{name}: extended boot record at sector {ebr} has no signature")
        (ptype, lba, count), (ntype, nlba, ncount) = _entries(sector)[:2]
        if ptype and count:
            start = ebr + lba
            if start + count > ext_start + ext_count:
                raise CorruptImage(f"{name}: logical partition {number} ends past its extended partition")
            parts.append(MbrPartition(number, ptype, start * SECTOR, count * SECTOR))
            number += 1
        ebr = ext_start + nlba if ntype in EXTENDED and ncount else None
    return parts
