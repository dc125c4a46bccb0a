"""Render the config templates (package data under templates/) into the state dir's etc/.

The templates are the real-openstack recipe's etc/ files (stackwatch shared reference) with ports,
paths and passwords turned into @NAME@ placeholders.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from stackwatch.devcloud import spec
from stackwatch.devcloud.layout import Layout

_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def values(layout: Layout, service_password: str) -> dict[str, str]:
    p = layout.ports
    return {
        "ROOT": str(layout.state),
        "NOVA_INSTANCES": str(layout.nova_instances),
        "SERVICE_PASSWORD": service_password,
        "KEYSTONE_PORT": str(p.keystone),
        "GLANCE_PORT": str(p.glance),
        "NEUTRON_PORT": str(p.neutron),
        "PLACEMENT_PORT": str(p.placement),
        "NOVA_PORT": str(p.nova),
        "RABBIT_PORT": str(p.rabbit),
        "PG_PORT": str(p.pg),
        "SWIFT_PROXY_PORT": str(p.swift_proxy),
        "SWIFT_OBJECT_PORT": str(p.swift_object),
        "SWIFT_CONTAINER_PORT": str(p.swift_container),
        "SWIFT_ACCOUNT_PORT": str(p.swift_account),
    }


def substitute(text: str, vals: dict[str, str], name: str = "<template>") -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group(1) not in vals:
            raise KeyError(f"{name}: unknown placeholder @{m.group(1)}@")
        return vals[m.group(1)]

    return _PLACEHOLDER.sub(repl, text)


def templates(only: str | None = None) -> list[tuple[str, str]]:
    """(relative path, text) of every core template file, or with ``only`` those of one optional service."""
    root = resources.files("stackwatch.devcloud") / "templates"
    out: list[tuple[str, str]] = []

    def walk(node, prefix: str) -> None:
        for child in node.iterdir():
            rel = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, rel + "/")
            elif not child.name.endswith((".pyc",)) and _optional_of(rel) == only:
                out.append((rel, child.read_text()))

    walk(root, "")
    return sorted(out)


def _optional_of(rel: str) -> str | None:
    """The optional service a template belongs to (its top directory, e.g. ``swift/``), or None."""
    top = rel.split("/", 1)[0]
    return top if top in spec.OPTIONAL_VENVS else None


def render_all(
    layout: Layout, service_password: str, only: str | None = None, extra: dict[str, str] | None = None
) -> list[Path]:
    """Render the core templates, or with ``only`` one optional service's (its etc/ directory existing is
    how devcloud knows that service was started, so a default ``up`` must not render it)."""
    vals = {**values(layout, service_password), **(extra or {})}
    written = []
    for rel, text in templates(only):
        target = layout.etc / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(substitute(text, vals, rel))
        if re.search(r"@[A-Z_]*PASSWORD@", text):
            target.chmod(0o600)
        written.append(target)
    return written
