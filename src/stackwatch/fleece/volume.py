"""Volumes of a disk: GPT (libvsgpt), MBR with logical partitions (mbr.py), LVM2 linear LVs (libvslvm).

A single-segment linear LV is read as a slice of its PV at the extent the metadata names, not through
libvslvm: libvslvm reads LV data in 64 KiB chunks whatever is asked, which doubled the bytes of the LVM
test images (bench/fleece.md). libvslvm still opens the VG, so an LV it cannot read is still reported.

`find_volumes(disk)` returns every leaf volume that may hold a filesystem, each with its own reader,
plus error strings for what was seen but cannot be read (an unsupported LV, a broken PV).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stackwatch.fleece import lvm, mbr
from stackwatch.fleece.blockio import ObjectReader, SliceReader
from stackwatch.fleece.errors import CorruptImage, FleeceError, UnsupportedFormat, reraise_memory

GPT_LVM = "e6d6d379-f507-44c2-a23c-238f2a3df928"
GPT_SKIP = {"21686148-6449-6e6f-744e-656564454649"}  # BIOS boot: code, never a filesystem
MBR_LVM = 0x8E
MBR_SKIP = {0x82}  # Linux swap


@dataclass
class Volume:
    device: str  # e.g. "disk", "p1", "p5", "vg0/root"
    reader: object  # SliceReader / ObjectReader (pread, size)
    ptype: str = ""


@dataclass
class VolumeScan:
    table: str  # "gpt", "mbr" or "none"
    volumes: list[Volume] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def find_volumes(disk) -> VolumeScan:
    sector0 = disk.pread(0, 512)
    gpt_sig = disk.pread(512, 8) == b"EFI PART"
    if gpt_sig:
        scan = VolumeScan("gpt")
        parts = _gpt(disk)
    elif mbr.has_mbr(sector0):
        if mbr.is_protective(sector0):
            raise CorruptImage(f"{disk.name}: protective MBR but no GPT header at sector 1")
        scan = VolumeScan("mbr")
        parts = [
            Volume(
                f"p{p.number}",
                SliceReader(disk, p.start, p.size, f"{disk.name}:p{p.number}"),
                f"{p.type:02x}",
            )
            for p in mbr.parse(disk, disk.size)
        ]
    else:
        scan = VolumeScan("none")
        parts = [Volume("disk", disk)]
    for part in parts:
        if part.ptype in GPT_SKIP or part.ptype in (f"{t:02x}" for t in MBR_SKIP):
            continue
        if part.ptype in (GPT_LVM, f"{MBR_LVM:02x}") or lvm.find_label(part.reader) is not None:
            try:
                vols, errs = _lvm(part)
                scan.volumes.extend(vols)
                scan.errors.extend(errs)
            except FleeceError as e:
                scan.errors.append(str(e))
        else:
            scan.volumes.append(part)
    return scan


def _gpt(disk) -> list[Volume]:
    import pyvsgpt

    vol = pyvsgpt.volume()
    try:
        vol.open_file_object(disk)
    except OSError as e:
        reraise_memory(e)
        raise CorruptImage(f"{disk.name}: libvsgpt cannot read the GPT: {e}") from e
    out = []
    for p in vol.partitions:
        off, size = p.volume_offset, p.size
        if off + size > disk.size:
            raise CorruptImage(f"{disk.name}: GPT partition {p.entry_index + 1} ends past the end of the disk")
        out.append(
            Volume(
                f"p{p.entry_index + 1}",
                SliceReader(disk, off, size, f"{disk.name}:p{p.entry_index + 1}"),
                str(p.type_identifier).lower(),
            )
        )
    return out


def _lvm(part: Volume) -> tuple[list[Volume], list[str]]:
    import pyvslvm

    if lvm.find_label(part.reader) is None:
        raise UnsupportedFormat(f"{part.device}: LVM partition type but no LVM2 label")
    vg_name, lvs = lvm.logical_volumes(lvm.read_metadata(part.reader))
    h = pyvslvm.handle()
    try:
        h.open_file_object(part.reader)
        h.open_physical_volume_files_as_file_objects([part.reader])
        vg = h.get_volume_group()
        by_name = {lv.name: lv for lv in vg.logical_volumes}
    except OSError as e:
        reraise_memory(e)
        raise CorruptImage(f"{part.device}: libvslvm cannot read the volume group: {e}") from e
    out = []
    errors = []
    for info in lvs:
        if not info.linear:
            errors.append(
                f"{vg_name}/{info.name}: LV segment type {'/'.join(info.segment_types)} is not supported "
                "(only linear LVs are read)"
            )
            continue
        lv = by_name.get(info.name)
        if lv is None:
            errors.append(f"{vg_name}/{info.name}: in the metadata but not readable by libvslvm")
            continue
        name = f"{vg_name}/{info.name}"
        if info.extent is not None:
            off, size = info.extent
            if off + size > part.reader.size or size != lv.size:
                raise CorruptImage(f"{name}: LV extent {off}+{size} does not fit its PV or disagrees with libvslvm")
            out.append(Volume(name, SliceReader(part.reader, off, size, name), "lv"))
        else:
            out.append(Volume(name, ObjectReader(lv, lv.size, name=name), "lv"))
    return out, errors
