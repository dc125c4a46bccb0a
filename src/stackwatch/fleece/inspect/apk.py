"""Alpine packages from /lib/apk/db/installed (P: name, V: version-rN, A: arch)."""

from __future__ import annotations


def parse_installed(text: str) -> list[dict]:
    out = []
    for stanza in text.split("\n\n"):
        f = {line[0]: line[2:] for line in stanza.splitlines() if len(line) > 2 and line[1] == ":"}
        if "P" not in f:
            continue
        version, _, release = f.get("V", "").rpartition("-r")
        if not version:
            version, release = f.get("V", ""), ""
        out.append(
            {
                "name": f["P"],
                "epoch": 0,
                "version": version,
                "release": f"r{release}" if release else "",
                "arch": f.get("A", ""),
                "manager": "apk",
            }
        )
    return out


def packages(root) -> list[dict] | None:
    text = root.read_text("/lib/apk/db/installed", limit=128 << 20)
    return None if text is None else parse_installed(text)
