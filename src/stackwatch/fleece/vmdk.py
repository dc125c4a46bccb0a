"""VMDK sparse extents, streamOptimized (compressed grains with markers) and monolithicSparse (plain
grains): our own reader of only the grains asked for.

Why not libvmdk here: measured on the builder's 57.7 MiB streamOptimized image, libvmdk fetched 44.5 MiB
(75 % of the file) in 55 requests, because it walks the stream's grain markers on open/read instead of
seeking through the grain directory. The format does not need that: the grain directory (GD) and grain
tables (GT) give the file sector of every grain, and each grain is a 12-byte marker (LBA, compressed
size) followed by its zlib data. This reader reads the header, the GD and GTs, and then only the grains
the layers above ask for, so it costs about what a qcow2 of the same disk costs. A grain is read in one
exact span (`pread_span`) from its marker to the start of the closest grain after it in a loaded GT
(grains never overlap), with the grains that follow as read-ahead and grains cached inflated
(inflated.py); when no grain is known to follow within a grain's largest size, its marker is read
first. monolithicSparse (no
compression, no markers) uses the same tables; libvmdk read its grains whole (see MonolithicSparseImage).

Layout (libyal's "VMWare Virtual Disk Format (VMDK)" and VMware's Virtual Disk Format 5.0 technote): a
512-byte little-endian header "KDMV"; flags bit 16 = compressed grains, bit 17 = markers, bit 2 = a GT
entry of 1 means a zero grain. The GD sector is in the header, or -1 (GD_AT_END) when a stream writer
(VMware, ovftool) put the GD and GTs after the grains: then the footer, a copy of the header with the
real GD sector, sits 1024 bytes before the end of the file (footer marker, footer, end-of-stream marker).
qemu-img 7.2 writes the GD and GTs at the front and a header that names them directly.
"""

from __future__ import annotations

import bisect
import collections
import struct
import zlib
from dataclasses import dataclass

from stackwatch.fleece.errors import CorruptImage, LimitExceeded, UnsupportedFormat
from stackwatch.fleece.inflated import InflatedCache

MAGIC = b"KDMV"
SECTOR = 512
GD_AT_END = 0xFFFF_FFFF_FFFF_FFFF
FLAG_ZERO_GRAIN = 1 << 2
FLAG_COMPRESSED = 1 << 16
FLAG_MARKERS = 1 << 17
COMPRESSION_DEFLATE = 1
MAX_TABLE_BYTES = 32 << 20  # GD plus every GT; qcow2's L1 limit, far beyond any real disk's need
_HEADER = struct.Struct("<4sIIQQQQIQQQB4sH")
_MARKER = struct.Struct("<QI")


@dataclass(frozen=True)
class Header:
    version: int
    flags: int
    capacity: int  # sectors
    grain_sectors: int
    gtes_per_gt: int
    gd_sector: int
    compression: int

    @property
    def stream_optimized(self) -> bool:
        return bool(self.flags & FLAG_COMPRESSED and self.flags & FLAG_MARKERS)

    @property
    def grain_bytes(self) -> int:
        return self.grain_sectors * SECTOR


def parse_header(raw: bytes, name: str) -> Header:
    if len(raw) < _HEADER.size or raw[:4] != MAGIC:
        raise CorruptImage(f"{name}: not a VMDK sparse extent header (file too short or bad magic)")
    (_, version, flags, capacity, grain, _do, _ds, gtes, _rgd, gd, _oh, _dirty, _nl, comp) = _HEADER.unpack_from(raw)
    return Header(version, flags, capacity, grain, gtes, gd, comp)


def read_header(reader, name: str) -> Header:
    """The header, or for GD_AT_END streams the footer that holds the real grain directory sector."""
    h = parse_header(reader.pread(0, SECTOR), name)
    if h.gd_sector == GD_AT_END:
        if reader.size < 3 * SECTOR:
            raise CorruptImage(f"{name}: VMDK stream too short to hold its footer")
        footer = parse_header(reader.pread(reader.size - 2 * SECTOR, SECTOR), f"{name} (footer)")
        if footer.gd_sector == GD_AT_END:
            raise CorruptImage(f"{name}: VMDK footer still says the grain directory is at the end")
        h = footer
    return h


class StreamOptimizedImage:
    """Guest view of a streamOptimized VMDK over `reader` (anything with `pread` and `size`)."""

    def __init__(self, reader, name: str = "") -> None:
        self.name = name or getattr(reader, "name", "vmdk")
        self.reader = reader
        self.header = h = read_header(reader, self.name)
        self._check_kind(h)
        gs, per = h.grain_sectors, h.gtes_per_gt
        if gs < 8 or gs > 4096 or gs & (gs - 1):
            raise CorruptImage(f"{self.name}: VMDK grain of {gs} sectors (must be a power of 2, 8..4096)")
        if per < 1 or per > 4096:
            raise CorruptImage(f"{self.name}: VMDK grain table of {per} entries (1..4096)")
        self.size = h.capacity * SECTOR
        self.n_grains = -(-h.capacity // gs)
        n_gd = -(-self.n_grains // per)
        if 4 * (n_gd + self.n_grains) > MAX_TABLE_BYTES:
            raise LimitExceeded(f"{self.name}: VMDK capacity {self.size} needs grain tables beyond the limit")
        gd_off = h.gd_sector * SECTOR
        if not h.gd_sector or gd_off + 4 * n_gd > reader.size:
            raise CorruptImage(f"{self.name}: VMDK grain directory at sector {h.gd_sector} lies outside the file")
        self._gd = struct.unpack(f"<{n_gd}I", reader.pread(gd_off, 4 * n_gd))
        seen: set[int] = set()
        for i, gt in enumerate(self._gd):
            if gt in (0, 1):
                continue
            if gt * SECTOR + 4 * per > reader.size or gt in seen:
                raise CorruptImage(f"{self.name}: VMDK GD[{i}] -> grain table at sector {gt} is outside or shared")
            seen.add(gt)
        self._gts: collections.OrderedDict[int, tuple[int, ...]] = collections.OrderedDict()
        self._starts: dict[int, list[int]] = {}  # per loaded grain table: its grains' sectors, sorted
        self._inflated = InflatedCache(h.grain_bytes)

    def _check_kind(self, h: Header) -> None:
        if not h.stream_optimized:
            raise UnsupportedFormat(f"{self.name}: not a streamOptimized VMDK (flags {h.flags:#x})")
        if h.compression != COMPRESSION_DEFLATE:
            raise UnsupportedFormat(f"{self.name}: VMDK compression method {h.compression} is not deflate")

    def _gt(self, index: int) -> tuple[int, ...]:
        per = self.header.gtes_per_gt
        gt = self._gd[index]
        if gt in (0, 1):
            return (0,) * per
        table = self._gts.get(gt)
        if table is None:
            table = struct.unpack(f"<{per}I", self.reader.pread(gt * SECTOR, 4 * per))
            self._gts[gt] = table
            self._starts[gt] = sorted(x for x in table if x > 1)
            if len(self._gts) > 256:
                self._starts.pop(self._gts.popitem(last=False)[0], None)
        return table

    def _sector(self, grain: int) -> int:
        """File sector of a grain; 0 for a grain that reads as zeros (unallocated, or a zero grain)."""
        h = self.header
        gi, ti = divmod(grain, h.gtes_per_gt)
        sector = self._gt(gi)[ti] if gi < len(self._gd) else 0
        return 0 if sector == 1 and h.flags & FLAG_ZERO_GRAIN else sector

    def _next_start(self, grain: int, sector: int) -> int | None:
        """Where the next grain's marker starts when it directly follows this grain in the file (the end of
        this grain's data, at most): only from a grain table already loaded; None when unknown."""
        h = self.header
        nxt = grain + 1
        if nxt >= self.n_grains or (nxt // h.gtes_per_gt) != (grain // h.gtes_per_gt):
            return None
        ns = self._sector(nxt)
        max_sectors = -(-(_MARKER.size + 2 * h.grain_bytes) // SECTOR)
        return ns * SECTOR if sector < ns <= sector + max_sectors else None

    def _bound(self, sector: int) -> int | None:
        """Start of the closest grain after `sector` in any loaded grain table (grains never overlap, so this
        grain ends before it), if it lies within one grain's largest size; else None."""
        best = None
        for starts in self._starts.values():
            i = bisect.bisect_right(starts, sector)
            if i < len(starts) and (best is None or starts[i] < best):
                best = starts[i]
        max_sectors = -(-(_MARKER.size + 2 * self.header.grain_bytes) // SECTOR)
        return best * SECTOR if best is not None and best <= sector + max_sectors else None

    def _grain(self, grain: int) -> bytes:
        """The inflated grain: marker and data read in one exact span when the next grain's start bounds it,
        with the grains that follow in the file as read-ahead (inflated.py); else marker, then data."""
        h = self.header
        data = self._inflated.ask(grain)
        if data is not None:
            return data
        sector = self._sector(grain)
        if sector == 0:
            return bytes(h.grain_bytes)
        off = sector * SECTOR
        if off + _MARKER.size > self.reader.size:
            raise CorruptImage(f"{self.name}: VMDK grain {grain} at sector {sector} lies outside the file")
        read = getattr(self.reader, "pread_span", self.reader.pread)
        follows = self._next_start(grain, sector)  # grain + 1 starts where this one ends
        end = follows or self._bound(sector)
        if end is None:  # no grain known to follow it closely: the marker says its size
            size = self._marker(grain, read(off, _MARKER.size))
            data = self._inflate(grain, read(off + _MARKER.size, size), size)
            self._inflated.put(grain, data)
            return data
        budget = end + self._inflated.readahead_bytes(grain, end - off)
        ahead: list[tuple[int, int]] = []  # (grain, start) of whole grains read along
        g, start = grain, end
        while follows and len(ahead) < self._inflated.read_max - 1 and g + 1 not in self._inflated:
            nxt_end = self._next_start(g + 1, start // SECTOR)
            if nxt_end is None or nxt_end > budget:
                break
            ahead.append((g + 1, start))
            g, start = g + 1, nxt_end
        raw = read(off, min(start, self.reader.size) - off)
        size = self._marker(grain, raw)
        if _MARKER.size + size > len(raw):  # tables that overlap grains (a broken image): read what it says
            data = self._inflate(grain, read(off + _MARKER.size, size), size)
        else:
            data = self._inflate(grain, raw[_MARKER.size : _MARKER.size + size], size)
        self._inflated.put(grain, data)
        for g, at in ahead:
            try:
                size = self._marker(g, raw[at - off :])
                self._inflated.put(g, self._inflate(g, raw[at - off + _MARKER.size :][:size], size))
            except CorruptImage:  # read ahead, not asked for: its error is raised if it ever is
                continue
        return data

    def _marker(self, grain: int, raw: bytes) -> int:
        """The compressed size from a grain's marker, which must name this grain's LBA."""
        h = self.header
        if len(raw) < _MARKER.size:
            raise CorruptImage(f"{self.name}: VMDK grain {grain} marker runs past the end of the file")
        lba, size = _MARKER.unpack(raw[: _MARKER.size])
        if lba != grain * h.grain_sectors or not 0 < size <= 2 * h.grain_bytes:
            raise CorruptImage(
                f"{self.name}: VMDK grain {grain} marker says LBA {lba}, {size} bytes "
                f"(expected LBA {grain * h.grain_sectors}, 1..{2 * h.grain_bytes} bytes)"
            )
        return size

    def _inflate(self, grain: int, data: bytes, size: int) -> bytes:
        gb = self.header.grain_bytes
        if len(data) != size:
            raise CorruptImage(f"{self.name}: VMDK grain {grain} runs past the end of the file")
        try:
            out = zlib.decompressobj().decompress(data, gb)
        except zlib.error as err:
            raise CorruptImage(f"{self.name}: VMDK grain {grain} does not inflate: {err}") from err
        return out.ljust(gb, b"\0")

    def _piece(self, grain: int, within: int, take: int) -> bytes:
        return self._grain(grain)[within : within + take]

    def read_buffer_at_offset(self, n: int, offset: int) -> bytes:
        gb = self.header.grain_bytes
        n = max(0, min(n, self.size - offset))
        out = []
        pos = offset
        while pos < offset + n:
            g, within = divmod(pos, gb)
            take = min(gb - within, offset + n - pos)
            out.append(self._piece(g, within, take))
            pos += take
        return b"".join(out)


class MonolithicSparseImage(StreamOptimizedImage):
    """Guest view of a hosted sparse extent (monolithicSparse: plain grains, no markers, no compression).

    Why not libvmdk: measured on the builder's 137.4 MiB monolithicSparse image, libvmdk read every grain
    whole (64 KiB) whatever was asked: 2048 KiB (1.46 %) where the qcow2 of the same disk reads 1280 KiB.
    The same GD / GT walk as a stream gives each grain's sector; only the bytes asked for are read.
    """

    def _check_kind(self, h: Header) -> None:
        if h.flags & (FLAG_COMPRESSED | FLAG_MARKERS):
            raise UnsupportedFormat(f"{self.name}: not a plain sparse VMDK extent (flags {h.flags:#x})")

    def _piece(self, grain: int, within: int, take: int) -> bytes:
        h = self.header
        gi, ti = divmod(grain, h.gtes_per_gt)
        sector = self._gt(gi)[ti]
        if sector == 0 or (sector == 1 and h.flags & FLAG_ZERO_GRAIN):
            return bytes(take)
        off = sector * SECTOR
        if off >= self.reader.size:
            raise CorruptImage(f"{self.name}: VMDK grain {grain} at sector {sector} lies outside the file")
        return self.reader.pread(off + within, take).ljust(take, b"\0")
