"""Installed kernels: /boot/vmlinuz-<version> and /lib/modules/<version> (either is evidence)."""

from __future__ import annotations

import stat


def kernels(root) -> list[str]:
    found = set()
    for name, _mode, _e in root.listdir("/boot"):
        if name.startswith("vmlinuz-") and "rescue" not in name:
            found.add(name[len("vmlinuz-") :])
    for name, mode, _e in root.listdir("/lib/modules"):
        if stat.S_ISDIR(mode):
            found.add(name)
    return sorted(found)
