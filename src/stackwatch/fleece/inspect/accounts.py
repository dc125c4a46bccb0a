"""Users and groups from /etc/passwd and /etc/group. /etc/shadow is never opened: no secrets leave."""

from __future__ import annotations


def users(root) -> list[dict]:
    out = []
    for line in (root.read_text("/etc/passwd", limit=16 << 20) or "").splitlines():
        f = line.split(":")
        if len(f) < 7 or not f[0] or f[0].startswith(("#", "+", "-")):
            continue
        try:
            uid, gid = int(f[2]), int(f[3])
        except ValueError:
            continue
        out.append({"name": f[0], "uid": uid, "gid": gid, "home": f[5], "shell": f[6]})
    return out


def groups(root) -> list[dict]:
    out = []
    for line in (root.read_text("/etc/group", limit=16 << 20) or "").splitlines():
        f = line.split(":")
        if len(f) < 4 or not f[0] or f[0].startswith(("#", "+", "-")):
            continue
        try:
            gid = int(f[2])
        except ValueError:
            continue
        out.append({"name": f[0], "gid": gid, "members": [m for m in f[3].split(",") if m]})
    return out
