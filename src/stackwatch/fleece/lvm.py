"""LVM2 physical volume label and text metadata: checked before libvslvm reads the LVs.

Why our own code: libvslvm reads linear LVs but does not expose a segment's type, so it cannot tell us
that an LV is striped, mirrored, a RAID or a thin volume, and it accepts metadata whose checksum is
wrong. We read the label, verify the metadata area's CRC and parse the text format (a few nested
`key = value` sections) to report unsupported segment types by LV name.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from stackwatch.fleece.errors import CorruptImage

SECTOR = 512
INITIAL_CRC = 0xF597A6CF
MDA_MAGIC = b" LVM2 x[5A%r0N*>"
MAX_TEXT = 1 << 20


def lvm_crc(data: bytes) -> int:
    """LVM's calc_crc: reflected CRC-32 without the pre/post inversion."""
    return zlib.crc32(data, INITIAL_CRC ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


@dataclass(frozen=True)
class LogicalVolume:
    name: str
    segment_types: tuple[str, ...]
    linear: bool
    # (PV byte offset, byte length) when the LV is one linear segment on one PV; else None
    extent: tuple[int, int] | None = None


def find_label(reader) -> int | None:
    """Sector (0..3) holding LABELONE, or None when this is not a PV."""
    head = reader.pread(0, 4 * SECTOR)
    for i in range(4):
        if head[i * SECTOR : i * SECTOR + 8] == b"LABELONE" and head[i * SECTOR + 24 : i * SECTOR + 32] == b"LVM2 001":
            return i
    return None


def read_metadata(reader) -> str:
    """The current metadata text of the PV, CRC-checked."""
    name = getattr(reader, "name", "pv")
    sector = find_label(reader)
    if sector is None:
        raise CorruptImage(f"{name}: no LVM2 label")
    label = reader.pread(sector * SECTOR, SECTOR)
    if len(label) < SECTOR:
        raise CorruptImage(f"{name}: LVM2 label sector is truncated")
    (pvh_off,) = struct.unpack_from("<I", label, 20)
    pos = pvh_off + 40
    areas: list[list[tuple[int, int]]] = [[], []]
    for which in (0, 1):  # data areas, then metadata areas, each list ends with (0, 0)
        while True:
            if pos + 16 > SECTOR:
                raise CorruptImage(f"{name}: LVM2 PV header area lists run past the label sector")
            off, size = struct.unpack_from("<QQ", label, pos)
            pos += 16
            if off == 0 and size == 0:
                break
            areas[which].append((off, size))
    if not areas[1]:
        raise CorruptImage(f"{name}: LVM2 PV without a metadata area")
    mda_off, mda_size = areas[1][0]
    mda = reader.pread(mda_off, SECTOR)
    if len(mda) < SECTOR:
        raise CorruptImage(f"{name}: LVM2 metadata area header at {mda_off} is truncated")
    if mda[4:20] != MDA_MAGIC:
        raise CorruptImage(f"{name}: LVM2 metadata area header at {mda_off} has a bad magic")
    if struct.unpack_from("<I", mda, 0)[0] != lvm_crc(mda[4:SECTOR]):
        raise CorruptImage(f"{name}: LVM2 metadata area header checksum mismatch")
    rl_off, rl_size, rl_crc, _flags = struct.unpack_from("<QQII", mda, 40)
    if not 0 < rl_size <= MAX_TEXT or rl_off + rl_size > mda_size:
        raise CorruptImage(f"{name}: LVM2 metadata of {rl_size} bytes at {rl_off} does not fit its area")
    text = reader.pread(mda_off + rl_off, rl_size)
    if lvm_crc(text) != rl_crc:
        raise CorruptImage(f"{name}: LVM2 metadata text checksum mismatch (garbage metadata)")
    return text.rstrip(b"\0").decode("utf-8", "replace")


_TOKEN = re.compile(r'\s*(?:(#[^\n]*)|("(?:[^"\\]|\\.)*")|([\w.+-]+)|(\S))')


def parse_text(text: str) -> dict:
    """LVM2 text format -> nested dicts (values: int, str, list). Comments dropped."""
    tokens: list[str] = []
    for m in _TOKEN.finditer(text):
        if m.group(1):
            continue
        tok = m.group(2) or m.group(3) or m.group(4)
        if tok:
            tokens.append(tok)
    pos = 0

    def value(tok: str):
        if tok in ("{", "}", "[", "]", "=", ","):
            raise CorruptImage(f"LVM2 metadata: {tok!r} where a value belongs")
        if tok.startswith('"'):
            return tok[1:-1]
        try:
            return int(tok)
        except ValueError:
            return tok

    def section(depth: int) -> dict:
        nonlocal pos
        if depth > 16:
            raise CorruptImage("LVM2 metadata nests deeper than 16 sections")
        out: dict = {}
        while pos < len(tokens) and tokens[pos] != "}":
            key = tokens[pos]
            nxt = tokens[pos + 1] if pos + 1 < len(tokens) else ""
            if nxt == "{":
                pos += 2
                out[key] = section(depth + 1)
                if pos >= len(tokens):
                    raise CorruptImage("LVM2 metadata: unterminated section")
                pos += 1
            elif nxt == "=":
                pos += 2
                if pos < len(tokens) and tokens[pos] == "[":
                    pos += 1
                    items = []
                    while pos < len(tokens) and tokens[pos] != "]":
                        if tokens[pos] != ",":
                            items.append(value(tokens[pos]))
                        pos += 1
                    pos += 1
                    out[key] = items
                elif pos < len(tokens):
                    out[key] = value(tokens[pos])
                    pos += 1
            else:
                raise CorruptImage(f"LVM2 metadata: unexpected token {key!r}")
        return out

    tree = section(0)
    if pos < len(tokens):
        raise CorruptImage(f"LVM2 metadata: unbalanced {tokens[pos]!r} at token {pos}")
    return tree


def logical_volumes(text: str) -> tuple[str, list[LogicalVolume]]:
    """(VG name, its LVs with their segment types) from a metadata text."""
    tree = parse_text(text)
    vgs = [(k, v) for k, v in tree.items() if isinstance(v, dict)]
    if len(vgs) != 1 or "logical_volumes" not in vgs[0][1] and "physical_volumes" not in vgs[0][1]:
        raise CorruptImage("LVM2 metadata does not describe exactly one volume group")
    vg_name, vg = vgs[0]
    extent_bytes = _int(vg.get("extent_size")) * SECTOR
    pvs = vg.get("physical_volumes") or {}
    pe_starts = {k: _int(v.get("pe_start")) * SECTOR for k, v in pvs.items() if isinstance(v, dict)}
    out = []
    for lv_name, lv in (vg.get("logical_volumes") or {}).items():
        if not isinstance(lv, dict):
            continue
        segs = [s for k, s in lv.items() if k.startswith("segment") and isinstance(s, dict)]
        types = tuple(str(s.get("type", "?")) for s in segs)
        linear = bool(segs) and all(s.get("type") == "striped" and s.get("stripe_count") == 1 for s in segs)
        extent = None
        stripes = segs[0].get("stripes") if len(segs) == 1 else None
        if linear and isinstance(stripes, list) and len(stripes) == 2 and stripes[0] in pe_starts and extent_bytes:
            start, count = _int(stripes[1]), _int(segs[0].get("extent_count"))
            if _int(segs[0].get("start_extent")) == 0 and count > 0:
                extent = (pe_starts[stripes[0]] + start * extent_bytes, count * extent_bytes)
        out.append(LogicalVolume(lv_name, types, linear, extent))
    return vg_name, out


def _int(v: object) -> int:
    return v if isinstance(v, int) and v >= 0 else 0
