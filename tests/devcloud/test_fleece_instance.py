"""Fleece `instance:UUID` against devcloud's real Nova and Glance: snapshot -> ranged reads -> delete it.

devcloud's compute driver (stackwatch/devcloud/novadriver.py) uploads `<instances_path>/<uuid>/disk` when
Nova snapshots a server, as libvirt's driver uploads the instance's disk. Each test puts one of the
builder's images (or a disk nothing can be read from) there, so the snapshot image holds real data, and
checks the report against the builder's manifest and that no snapshot image outlives the fleece, also
when the fleece fails or is interrupted.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from stackwatch.devcloud import proc
from stackwatch.devcloud.layout import Layout
from stackwatch.fleece.targets import SourceOptions
from tests.fleece.conftest import built, tools  # noqa: F401 - session fixtures of the fleece images
from tests.fleece.test_images import check_report

pytestmark = pytest.mark.devcloud
IMAGE = "gpt-ext4-compressed"  # the smallest Debian qcow2 the builder makes


@pytest.fixture(autouse=True)
def cloud_env(devcloud_cloud, monkeypatch) -> None:
    """clouds.yaml and cloud name in the environment: the CLI and openstack.connect(cloud=...) find it there."""
    for key, value in devcloud_cloud.env().items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def server(devcloud_cloud, devcloud_conn):
    """An ACTIVE server on the fake compute; it and its disk directory are removed afterwards."""
    layout = Layout(home=devcloud_cloud.home)
    pid = proc.read_pid(layout.run / "nova-compute.pid")
    if b"novacompute.py" not in Path(f"/proc/{pid}/cmdline").read_bytes():
        pytest.fail(
            "devcloud's nova-compute runs without stackwatch's snapshot driver (a devcloud started by older "
            "code is still up): restart it with STACKWATCH_DEVCLOUD_FRESH=1 or `stackwatch devcloud down`"
        )
    conn = devcloud_conn
    image = conn.image.find_image("cirros-fake", ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)
    created = conn.compute.create_server(
        name=f"fleece-{uuid.uuid4().hex[:6]}", image_id=image.id, flavor_id=flavor.id, networks="none"
    )
    disk_dir = layout.nova_instances / created.id
    try:
        yield conn.compute.wait_for_server(created, status="ACTIVE", wait=120)
    finally:
        conn.compute.delete_server(created.id, ignore_missing=True)
        # gone before the next test: the inventory tests compare a full refresh with what the API lists
        conn.compute.wait_for_delete(created, wait=60)
        shutil.rmtree(disk_dir, ignore_errors=True)


def put_disk(devcloud_cloud, server_id: str, source: Path) -> Path:
    """Make `source` the server's disk, where libvirt keeps it and devcloud's driver snapshots it from."""
    disk = Layout(home=devcloud_cloud.home).nova_instances / server_id / "disk"
    disk.parent.mkdir(parents=True, exist_ok=True)
    disk.symlink_to(source)
    return disk


def snapshots_of(conn, server_id: str) -> list:
    """Glance images Nova made from this server (Nova tags each snapshot with the server's id)."""
    return [i for i in conn.image.images() if (i.properties or {}).get("instance_uuid") == server_id]


def test_fleece_instance_through_a_real_snapshot(devcloud_cloud, devcloud_conn, server, built):  # noqa: F811
    directory, manifest = built
    image = manifest["images"][IMAGE]
    put_disk(devcloud_cloud, server.id, directory / image["file"])
    assert snapshots_of(devcloud_conn, server.id) == []
    out = subprocess.run(
        [sys.executable, "-m", "stackwatch", "fleece", f"instance:{server.id}", "--format", "json", "--no-store"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    [report] = json.loads(out.stdout)
    assert report["target"] == f"instance:{server.id}"
    check_report(report, image, manifest["roots"][image["root"]])  # OS, hostname, users, package count...
    io = report["io"]
    assert io["image_size"] == image["size"]  # the snapshot image is the disk the driver uploaded
    assert io["requests"] <= 40 and io["bytes_read"] < 0.05 * image["size"], io  # ranged reads
    assert snapshots_of(devcloud_conn, server.id) == []  # deleted after the fleece


def test_snapshot_is_deleted_when_the_fleece_finds_nothing(devcloud_cloud, devcloud_conn, server, tmp_path):
    from stackwatch.fleece.runner import fleece_one
    from stackwatch.fleece.worker import Limits

    blank = tmp_path / "blank.raw"
    blank.write_bytes(bytes(4 << 20))  # no partition table, no filesystem
    put_disk(devcloud_cloud, server.id, blank)
    report = fleece_one(f"instance:{server.id}", SourceOptions(cloud=devcloud_cloud.cloud), Limits())
    assert report["errors"], report
    assert not (report["os"] or {}).get("id") and report["packages"] == []
    assert report["io"]["image_size"] == 4 << 20  # it did read the uploaded snapshot
    assert snapshots_of(devcloud_conn, server.id) == []


def test_snapshot_without_data_is_a_clear_error_and_is_deleted(devcloud_cloud, devcloud_conn, server):
    """No disk file: the driver uploads nothing, as Nova's FakeDriver; fail in seconds, not after 10 minutes."""
    from stackwatch.fleece.runner import fleece_one
    from stackwatch.fleece.worker import Limits

    started = time.monotonic()
    report = fleece_one(f"instance:{server.id}", SourceOptions(cloud=devcloud_cloud.cloud), Limits())
    assert any("uploaded no image data" in e for e in report["errors"]), report["errors"]
    assert time.monotonic() - started < 120
    assert snapshots_of(devcloud_conn, server.id) == []


def test_snapshot_is_deleted_when_interrupted(devcloud_cloud, devcloud_conn, server, built, monkeypatch):  # noqa: F811
    from stackwatch.fleece import runner
    from stackwatch.fleece.worker import Limits

    directory, manifest = built
    source = directory / manifest["images"][IMAGE]["file"]
    put_disk(devcloud_cloud, server.id, source)
    seen: list[str] = []

    def interrupted(target: str, *_args, **_kw) -> dict:
        image_id = target.removeprefix("glance:")
        snap = devcloud_conn.image.get_image(image_id)
        assert snap.status == "active" and snap.size == source.stat().st_size  # the real disk, uploaded
        seen.append(image_id)
        raise KeyboardInterrupt  # Ctrl-C while the worker reads the snapshot

    monkeypatch.setattr(runner, "run_isolated", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.fleece_one(f"instance:{server.id}", SourceOptions(cloud=devcloud_cloud.cloud), Limits())
    assert len(seen) == 1
    assert devcloud_conn.image.find_image(seen[0]) is None
    assert snapshots_of(devcloud_conn, server.id) == []
