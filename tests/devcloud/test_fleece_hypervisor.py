"""Fleece `instance:UUID --via hypervisor` against devcloud's real Nova and a real sshd on loopback.

The flow asks Nova (admin) for the server's `OS-EXT-SRV-ATTR:hypervisor_hostname`, then reads
`<instances_path>/<uuid>/disk` and its `_base/<hash>` backing file over SFTP. devcloud differs from a
production compute host in two ways, and the product's documented options absorb both, as they would
for a deployment that moved Nova's files or reaches its hypervisors through a jump address:
- its hypervisor is named `compute1` with no sshd behind that name: an OpenSSH client config
  (`$STACKWATCH_SSH_CONFIG`) maps it to the test's sshd (tests/fleece/sshd.py) with a `Host` entry;
- its nova.conf `instances_path` is under devcloud's state directory: `$STACKWATCH_NOVA_INSTANCES_PATH`.
The disk is the builder's qcow2 overlay, re-pointed (`qemu-img rebase -u`) at an absolute `_base` path as
Nova writes it, so the report must match the builder's manifest and the base must be read over SFTP.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from stackwatch.devcloud.layout import Layout
from tests.fleece.conftest import built, tools  # noqa: F401 - session fixtures of the fleece images
from tests.fleece.sshd import SSHServer, sshd  # noqa: F401 - a real sshd for the session
from tests.fleece.test_images import check_report
from tests.fleece.test_sftp import check_cheap, nova_layout

pytestmark = pytest.mark.devcloud


@pytest.fixture
def server(devcloud_cloud, devcloud_conn):
    """An ACTIVE server on devcloud's compute; it, its disk directory and our `_base` files go afterwards."""
    conn = devcloud_conn
    image = conn.image.find_image("cirros-fake", ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    created = conn.compute.create_server(
        name=f"fleece-hv-{uuid.uuid4().hex[:6]}", image_id=image.id, flavor_id=flavor.id, networks="none"
    )
    base = Layout(home=devcloud_cloud.home).nova_instances / "_base"
    had_base = base.is_dir()
    before = set(base.iterdir()) if had_base else set()
    try:
        yield conn.compute.wait_for_server(created, status="ACTIVE", wait=120)
    finally:
        conn.compute.delete_server(created.id, ignore_missing=True)
        # gone before the next test: the inventory tests compare a full refresh with what the API lists
        conn.compute.wait_for_delete(created, wait=60)
        shutil.rmtree(base.parent / created.id, ignore_errors=True)
        if base.is_dir():
            for p in set(base.iterdir()) - before:
                p.unlink()
            if not had_base:
                base.rmdir()


def fleece_cli(server_id: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """`stackwatch fleece instance:UUID --via hypervisor` as an operator runs it; (process, reports)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "stackwatch",
            "fleece",
            f"instance:{server_id}",
            "--via",
            "hypervisor",
            "--format",
            "json",
            "--no-store",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return out, json.loads(out.stdout) if out.stdout.strip() else []


@pytest.fixture
def hv_env(devcloud_cloud, server, sshd: SSHServer, tmp_path) -> dict[str, str]:  # noqa: F811
    """The process environment: devcloud's cloud, the ssh client config mapping its hypervisor, its
    instances path."""
    host = server.hypervisor_hostname
    assert host, "devcloud's admin sees OS-EXT-SRV-ATTR:hypervisor_hostname"
    return {
        **os.environ,
        **devcloud_cloud.env(),
        "STACKWATCH_SSH_CONFIG": str(sshd.client_config(tmp_path, alias=host)),
        "STACKWATCH_NOVA_INSTANCES_PATH": str(Layout(home=devcloud_cloud.home).nova_instances),
    }


def test_fleece_instance_via_hypervisor(devcloud_cloud, server, hv_env, built, sshd):  # noqa: F811
    directory, manifest = built
    image = manifest["images"]["qcow2-overlay"]
    instances = Path(hv_env["STACKWATCH_NOVA_INSTANCES_PATH"])
    disk = nova_layout(instances, directory / image["file"], directory / image["backing"], server.id)
    backing = subprocess.run(
        ["qemu-img", "info", "--output=json", str(disk)], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(backing)["backing-filename"].startswith(str(instances / "_base") + "/")
    logins = sshd.log.read_text().count("Accepted publickey")
    out, reports = fleece_cli(server.id, hv_env)
    assert out.returncode == 0, out.stderr[-3000:]
    [report] = reports
    assert report["target"] == f"instance:{server.id}"
    check_report(report, image, manifest["roots"][image["root"]])  # packages come from the _base file
    check_cheap(report, (directory / image["backing"]).stat().st_size)
    assert sshd.log.read_text().count("Accepted publickey") == logins + 1  # one SSH session, via the alias


def test_missing_disk_on_the_hypervisor_is_a_clear_error(server, hv_env):
    """A server whose disk is not where the instances path says (a wrong STACKWATCH_NOVA_INSTANCES_PATH):
    the report names the host and the path it tried, and the CLI exits 2 (no OS found), not with a crash."""
    out, reports = fleece_cli(server.id, hv_env)
    assert out.returncode == 2, out.stderr[-3000:]
    [report] = reports
    want = f"sftp://{server.hypervisor_hostname}{hv_env['STACKWATCH_NOVA_INSTANCES_PATH']}/{server.id}/disk"
    assert any(want in e and "No such file" in e for e in report["errors"]), report["errors"]
    assert report["packages"] == []
