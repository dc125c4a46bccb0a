"""Enabled systemd units: the entries of /etc/systemd/system/**/*.wants and *.requires."""

from __future__ import annotations

import posixpath

from stackwatch.fleece.errors import FleeceError, PartialResult

UNIT_DIRS = ("/etc/systemd/system",)


def enabled(root) -> dict:
    """{"enabled": [unit, ...]}; a loop or limit mid-walk keeps what was found (PartialResult)."""
    units: set[str] = set()
    try:
        for top in UNIT_DIRS:
            for d, name, _mode, _entry in root.walk(top, max_depth=3):
                if posixpath.basename(d).endswith((".wants", ".requires")):
                    units.add(name)
    except FleeceError as e:
        raise PartialResult({"enabled": sorted(units)}, str(e)) from e
    return {"enabled": sorted(units)}
