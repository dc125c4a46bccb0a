"""Which OS: os-release first, then redhat-release / debian_version for roots that predate it."""

from __future__ import annotations

import re
import shlex


def parse_os_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Z0-9_]+)=(.*)$", line.strip())
        if m:
            try:
                vals = shlex.split(m.group(2))
            except ValueError:
                vals = [m.group(2).strip("\"'")]
            out[m.group(1)] = vals[0] if vals else ""
    return out


def os_info(root) -> dict:
    """{id, name, version, pretty_name}; missing fields are None."""
    osr = {}
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = root.read_text(path, limit=1 << 16)
        if text:
            osr = parse_os_release(text)
            break
    info = {
        "id": osr.get("ID"),
        "name": osr.get("NAME"),
        "version": osr.get("VERSION_ID"),
        "pretty_name": osr.get("PRETTY_NAME"),
    }
    if info["id"]:
        return info
    rh = root.read_text("/etc/redhat-release", limit=4096)
    if rh:
        line = rh.strip().splitlines()[0] if rh.strip() else ""
        m = re.match(r"^(.*?) release ([\d.]+)", line)
        name = m.group(1) if m else line
        ident = {"Red Hat Enterprise Linux": "rhel", "CentOS Linux": "centos", "CentOS Stream": "centos"}.get(
            name.replace(" Server", ""), name.split()[0].lower() if name else None
        )
        return {"id": ident, "name": name, "version": m.group(2) if m else None, "pretty_name": line}
    deb = root.read_text("/etc/debian_version", limit=4096)
    if deb:
        ver = deb.strip()
        return {
            "id": "debian",
            "name": "Debian GNU/Linux",
            "version": ver.split(".")[0],
            "pretty_name": f"Debian GNU/Linux {ver}",
        }
    return info


def hostname(root) -> str | None:
    text = root.read_text("/etc/hostname", limit=4096)
    if text and text.strip():
        return text.strip().splitlines()[0].strip()
    net = root.read_text("/etc/sysconfig/network", limit=1 << 16)
    if net:
        m = re.search(r"^HOSTNAME=\"?([^\"\n]+)", net, re.M)
        if m:
            return m.group(1)
    return None
