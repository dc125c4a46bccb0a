"""Fleece test fixtures: the images the project's builder makes (cached), and a loopback Range server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "fleece"
sys.path.insert(0, str(SCRIPTS))
TOOLS = ("debootstrap", "qemu-img", "mkfs.xfs", "mkfs.ext4", "sfdisk", "rpmbuild", "debugfs", "db5.3_load")


def _tools_missing() -> list[str]:
    return [t for t in TOOLS if not shutil.which(t) and not Path("/usr/sbin", t).exists()]


@pytest.fixture(scope="session")
def tools() -> None:
    """The builder's host tools, installed with scripts/fleece/install-tools.sh when missing."""
    if _tools_missing() and os.geteuid() == 0:
        subprocess.run(["bash", str(SCRIPTS / "install-tools.sh")], check=False)
    missing = _tools_missing()
    if missing:
        pytest.skip(
            f"fleece fixture tools cannot be installed here: {', '.join(missing)} "
            "(run scripts/fleece/install-tools.sh as root)"
        )
    if os.geteuid() != 0:
        pytest.skip("the fleece fixture builder needs root (debootstrap and chroot)")


@pytest.fixture(scope="session")
def built(tools) -> tuple[Path, dict]:
    """(image directory, manifest) from scripts/fleece/build.py; instant when cached."""
    out = (
        subprocess.run([sys.executable, str(SCRIPTS / "build.py")], check=True, text=True, stdout=subprocess.PIPE)
        .stdout.strip()
        .splitlines()[-1]
    )
    d = Path(out)
    return d, json.loads((d / "manifest.json").read_text())


@pytest.fixture(scope="session")
def server(built):
    from rangeserver import serve

    srv, url = serve(str(built[0]))
    yield srv, url
    srv.shutdown()
