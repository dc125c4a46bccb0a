"""One image, start to end: container -> volumes -> filesystems -> guest root -> report dict.

The root filesystem is the one with an /etc holding os-release or passwd; the others are mounted where
its /etc/fstab says (LABEL=, UUID=, /dev/mapper/VG-LV, /dev/VG/LV). Errors of one layer go into the
report's `errors`; only an image with no readable root at all yields no inventory.
"""

from __future__ import annotations

import re
import uuid

from stackwatch.fleece.container import open_disk
from stackwatch.fleece.errors import FleeceError
from stackwatch.fleece.fs import FileSystem, Root, open_fs
from stackwatch.fleece.inspect import inspect_root
from stackwatch.fleece.report import empty_report
from stackwatch.fleece.volume import find_volumes


def fs_uuid(reader, fstype: str) -> str | None:
    raw = reader.pread(32, 16) if fstype == "xfs" else reader.pread(1024 + 104, 16)
    return str(uuid.UUID(bytes=raw)) if len(raw) == 16 and any(raw) else None


def _is_root(fs: FileSystem) -> bool:
    r = Root(fs)
    for path in ("/etc/os-release", "/etc/passwd"):
        try:
            if r.read_text(path, limit=1 << 20) is not None:
                return True
        except FleeceError:  # a broken os-release (a symlink loop, say) is reported by inspect
            continue
    return False


def _fstab_device(spec: str, by: dict[str, dict]) -> dict | None:
    if spec.startswith("LABEL="):
        return by["label"].get(spec[6:])
    if spec.startswith("UUID="):
        return by["uuid"].get(spec[5:].lower())
    m = re.match(r"^/dev/disk/by-(label|uuid)/(.+)$", spec)
    if m:
        return by[m.group(1)].get(m.group(2).lower() if m.group(1) == "uuid" else m.group(2))
    m = re.match(r"^/dev/mapper/((?:[^-]|--)+)-((?:[^-]|--)+)$", spec)
    if m:
        return by["device"].get(f"{m.group(1).replace('--', '-')}/{m.group(2).replace('--', '-')}")
    m = re.match(r"^/dev/([^/]+)/([^/]+)$", spec)
    if m:
        return by["device"].get(f"{m.group(1)}/{m.group(2)}")
    m = re.match(r"^/dev/(?:[svx]d[a-z]|nvme\d+n\d+p|mmcblk\d+p)(\d+)$", spec)
    if m:
        return by["device"].get(f"p{m.group(1)}")
    return None


def analyze(reader, target: str, open_backing=None) -> dict:
    """The report for one opened source (its counters become the report's `io`)."""
    rep = empty_report(target)
    try:
        _fmt, disk = open_disk(reader, open_backing)
        scan = find_volumes(disk)
        rep["errors"].extend(scan.errors)
        found: list[dict] = []
        for vol in scan.volumes:
            try:
                fs = open_fs(vol.reader, vol.device)
            except FleeceError as e:
                rep["errors"].append(str(e))
                continue
            if fs is not None:
                found.append(
                    {
                        "device": vol.device,
                        "type": fs.fstype,
                        "label": fs.label,
                        "mountpoint": None,
                        "uuid": fs_uuid(vol.reader, fs.fstype),
                        "fs": fs,
                    }
                )
        roots = [f for f in found if _is_root(f["fs"])]
        if not roots:
            rep["errors"].append(
                "no root filesystem found (no filesystem with /etc/os-release or /etc/passwd; "
                f"saw {', '.join(f['type'] + ' on ' + f['device'] for f in found) or 'none'})"
            )
        else:
            root_fs = roots[0]
            root_fs["mountpoint"] = "/"
            root = Root(root_fs["fs"])
            by = {
                "label": {f["label"]: f for f in found if f["label"]},
                "uuid": {f["uuid"]: f for f in found if f["uuid"]},
                "device": {f["device"]: f for f in found},
            }
            for line in (root.read_text("/etc/fstab", limit=1 << 20) or "").splitlines():
                fields = line.split()
                if len(fields) < 2 or fields[0].startswith("#") or not fields[1].startswith("/"):
                    continue
                dev = _fstab_device(fields[0], by)
                if dev is not None and dev is not root_fs and dev["mountpoint"] is None:
                    dev["mountpoint"] = fields[1]
                    root.mount(fields[1], dev["fs"])
            sections, errors = inspect_root(root)
            rep.update(sections)
            rep["errors"].extend(errors)
        rep["filesystems"] = [{k: f[k] for k in ("device", "type", "label", "mountpoint")} for f in found]
    except FleeceError as e:
        rep["errors"].append(str(e))
    return rep
