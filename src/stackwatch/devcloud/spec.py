"""What devcloud installs: one venv per service group, pinned top-level versions, a stamp keying the cache.

Versions are those run-tested in the real-openstack recipe this package was ported from
(Debian 12, Python 3.11; see docs/devcloud.md).
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass

UWSGI = "uWSGI==2.0.31"


@dataclass(frozen=True)
class VenvSpec:
    """One cached virtualenv: its name and the requirements pip installs into it."""

    name: str
    requirements: tuple[str, ...]


VENVS: tuple[VenvSpec, ...] = (
    VenvSpec("keystone", ("keystone==30.0.0", UWSGI)),
    VenvSpec("glance", ("glance==33.0.0", UWSGI)),
    VenvSpec("nova", ("nova==34.0.0", "openstack-placement==16.0.0", UWSGI, "psycopg2-binary", "kombu")),
    VenvSpec("neutron", ("neutron==29.0.0", UWSGI, "psycopg2-binary")),
)

# Optional services (`stackwatch devcloud up --with NAME`): each its own venv and stamp, outside stamp() so
# the default install (and its cache key) is the same whether or not anyone ever asks for them.
OPTIONAL_VENVS: dict[str, VenvSpec] = {
    # Swift's servers are eventlet WSGI servers (no uWSGI); keystonemiddleware is the proxy's authtoken filter.
    "swift": VenvSpec("swift", ("swift==2.38.3", "keystonemiddleware==13.0.1")),
}

# Bump when the install procedure itself changes (patches applied after pip, venv layout).
INSTALL_REVISION = 1


def python_tag() -> str:
    return f"py{sys.version_info.major}.{sys.version_info.minor}"


def stamp() -> str:
    """Key of the install cache: changes whenever a requirement, the patch set or the Python minor changes."""
    text = "\n".join(
        [f"rev={INSTALL_REVISION}", python_tag()] + [f"{v.name}: {' '.join(v.requirements)}" for v in VENVS]
    )
    return f"{python_tag()}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def optional_stamp(name: str) -> str:
    """Cache key of one optional service venv: its requirements and the Python minor (not the core stamp)."""
    venv = OPTIONAL_VENVS[name]
    text = "\n".join([python_tag(), f"{venv.name}: {' '.join(venv.requirements)}"])
    return f"{python_tag()}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
