"""Debian packages from /var/lib/dpkg/status (only those whose status is `installed`)."""

from __future__ import annotations


def split_version(v: str) -> tuple[int, str, str]:
    """dpkg's [epoch:]upstream[-revision] -> (epoch, upstream, revision)."""
    epoch = 0
    if ":" in v:
        e, v = v.split(":", 1)
        epoch = int(e) if e.isdigit() else 0
    version, _, release = v.rpartition("-") if "-" in v else (v, "", "")
    return epoch, version, release


def parse_status(text: str) -> list[dict]:
    out = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            k, _, v = line.partition(":")
            fields[k] = v.strip()
        if "Package" not in fields or fields.get("Status", "").split()[-1:] != ["installed"]:
            continue
        epoch, version, release = split_version(fields.get("Version", ""))
        out.append(
            {
                "name": fields["Package"],
                "epoch": epoch,
                "version": version,
                "release": release,
                "arch": fields.get("Architecture", ""),
                "manager": "dpkg",
            }
        )
    return out


def packages(root) -> list[dict] | None:
    text = root.read_text("/var/lib/dpkg/status", limit=128 << 20)
    return None if text is None else parse_status(text)
