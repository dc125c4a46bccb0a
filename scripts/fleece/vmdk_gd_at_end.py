#!/usr/bin/env python3
"""Re-lay a qemu-img streamOptimized VMDK the way VMware / ovftool stream it: grain directory at the end.

Usage: vmdk_gd_at_end.py IN.vmdk OUT.vmdk

qemu-img 7.2 writes the grain directory and grain tables at the front and names them in the header;
VMware's stream writers cannot seek back, so their header says GD_AT_END (-1) and the real GD sector is
in a footer near the end: header, descriptor, [grain markers of a table, GT marker, GT]..., GD marker,
GD, footer marker, footer, end-of-stream marker (VMware Virtual Disk Format 5.0; libyal's VMDK notes).
The grains (marker + zlib data) are copied byte for byte from qemu's file, so the guest data is the same
real image; only the layout changes. The fleece tests read both layouts.
"""

from __future__ import annotations

import struct
import sys

SECTOR = 512
HEADER = struct.Struct("<4sIIQQQQIQQQB4sH")
GD_AT_END = 0xFFFF_FFFF_FFFF_FFFF
MARKER_GT, MARKER_GD, MARKER_FOOTER, MARKER_EOS = 1, 2, 3, 0
FLAG_RGD = 1 << 1


def marker(value: int, kind: int) -> bytes:
    return struct.pack("<QII", value, 0, kind).ljust(SECTOR, b"\0")


def pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % SECTOR)


def header(fields: list, gd_sector: int) -> bytes:
    f = list(fields)
    f[2] &= ~FLAG_RGD  # no redundant GD in a stream
    f[8] = 0  # rgd offset
    f[9] = gd_sector
    return HEADER.pack(*f).ljust(SECTOR, b"\0")


def convert(src: str, dst: str) -> None:
    with open(src, "rb") as f:
        data = f.read()
    fields = list(HEADER.unpack_from(data))
    capacity, grain, desc_off, desc_size, per, gd = fields[3], fields[4], fields[5], fields[6], fields[7], fields[9]
    n_grains = -(-capacity // grain)
    n_gd = -(-n_grains // per)
    gd_entries = struct.unpack_from(f"<{n_gd}I", data, gd * SECTOR)
    out = bytearray(header(fields, GD_AT_END))
    out += data[SECTOR : (desc_off + desc_size) * SECTOR]
    new_gd = []
    for gt_sector in gd_entries:
        table = struct.unpack_from(f"<{per}I", data, gt_sector * SECTOR) if gt_sector else (0,) * per
        new_gt = []
        for g in table:
            if g == 0:
                new_gt.append(0)
                continue
            _lba, size = struct.unpack_from("<QI", data, g * SECTOR)
            new_gt.append(len(out) // SECTOR)
            out += pad(data[g * SECTOR : g * SECTOR + 12 + size])
        if not any(new_gt):
            new_gd.append(0)
            continue
        gt_bytes = pad(struct.pack(f"<{per}I", *new_gt))
        out += marker(len(gt_bytes) // SECTOR, MARKER_GT)
        new_gd.append(len(out) // SECTOR)
        out += gt_bytes
    gd_bytes = pad(struct.pack(f"<{n_gd}I", *new_gd))
    out += marker(len(gd_bytes) // SECTOR, MARKER_GD)
    gd_sector = len(out) // SECTOR
    out += gd_bytes
    out += marker(1, MARKER_FOOTER)
    out += header(fields, gd_sector)
    out += marker(0, MARKER_EOS)
    with open(dst, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    convert(sys.argv[1], sys.argv[2])
