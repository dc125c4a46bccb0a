"""Fleece through a real Swift: `swift:CONTAINER/OBJECT` resolves the object URL from the cloud's catalog
(object-store, AUTH_<project>) and reads it with HTTP Range through the Keystone-authenticated session.

Swift is devcloud's optional service: this module adds it to the session's running devcloud
(``devcloud.up(services=("swift",))``), so the other devcloud tests keep the default, faster cloud. The
image is one the project's builder made from real Debian packages; the report must equal the builder's
manifest while reading a small fraction of the object, as for Glance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from stackwatch import devcloud
from tests.fleece.conftest import built, tools  # noqa: F401 - session fixtures of the fleece images
from tests.fleece.test_images import check_report

pytestmark = [pytest.mark.devcloud, pytest.mark.timeout(900)]
IMAGE = "gpt-ext4-compressed"  # the smallest Debian qcow2 the builder makes


@pytest.fixture(scope="module")
def swift_cloud(devcloud_cloud: devcloud.DevCloud) -> Iterator[devcloud.DevCloud]:
    """The session's devcloud with Swift started beside it (installed first if the cache lacks it), and
    taken out again afterwards when this module added it: the later tests expect the default cloud."""
    before = devcloud.status().cloud
    added = before is None or "swift" not in before.services
    info = devcloud.up(services=("swift",))
    assert "swift" in info.services and "object-store" in info.endpoints
    yield info
    if added:
        devcloud.remove("swift")


@pytest.fixture(scope="module")
def swift_conn(swift_cloud: devcloud.DevCloud):
    # a new connection: one made before Swift was added holds a token whose catalog has no object-store
    conn = swift_cloud.connect()
    yield conn
    conn.close()


@pytest.fixture
def swift_object(swift_conn, built) -> Iterator[tuple[str, str, dict, dict]]:  # noqa: F811
    directory, manifest = built
    image = manifest["images"][IMAGE]
    container = f"fleece-{uuid.uuid4().hex[:8]}"
    name = f"images/{IMAGE}.qcow2"  # a pseudo-directory in the name: the target keeps everything after the first /
    swift_conn.object_store.create_container(container)
    try:
        swift_conn.object_store.create_object(container, name, filename=str(directory / image["file"]))
        yield container, name, image, manifest["roots"][image["root"]]
    finally:
        for obj in swift_conn.object_store.objects(container):
            swift_conn.object_store.delete_object(obj, container=container, ignore_missing=True)
        swift_conn.object_store.delete_container(container, ignore_missing=True)


def _fleece_cli(cloud: devcloud.DevCloud, target: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`stackwatch fleece TARGET --format json` as a user runs it, with only devcloud's OS_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "STACKWATCH_"))}
    env.update(cloud.env())
    return subprocess.run(
        [sys.executable, "-m", "stackwatch", "fleece", target, "--format", "json", "--no-store"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_swift_is_in_the_catalog_and_answers(swift_cloud, swift_conn):
    assert {s["type"] for s in swift_conn.service_catalog} >= {"object-store", "image", "compute"}
    endpoint = swift_conn.object_store.get_endpoint()
    assert endpoint.startswith("http://127.0.0.1:") and "/v1/AUTH_" in endpoint
    st = devcloud.status()
    assert st.up and {"swift-proxy", "swift-account", "swift-container", "swift-object"} <= {
        s.name for s in st.services
    }


def test_fleece_swift_object_with_ranged_reads(swift_cloud, swift_object, tmp_path):
    container, name, image, root = swift_object
    target = f"swift:{container}/{name}"
    res = _fleece_cli(swift_cloud, target, tmp_path)
    assert res.returncode == 0, res.stderr
    (report,) = json.loads(res.stdout)
    assert report["target"] == target
    check_report(report, image, root)
    io = report["io"]
    assert io["image_size"] == image["size"]
    assert io["requests"] <= 40, io
    assert io["bytes_read"] < 0.05 * image["size"], io  # ranged reads, not a download


def test_fleece_swift_object_name_with_url_characters(swift_conn, swift_cloud, swift_object, tmp_path):
    # ' ', '#', '?' and '%' are legal in Swift names; unquoted, 'x y#1?.qcow2' was read as object 'x y'
    container, name, image, root = swift_object
    odd = "odd/x y#1?%20.qcow2"
    odd_path = f"/{quote(container, safe='')}/{quote(odd, safe='/')}"
    # a server-side copy (openstacksdk neither quotes object names nor implements copy_object)
    copied = swift_conn.object_store.put(
        odd_path, headers={"X-Copy-From": f"/{container}/{quote(name, safe='/')}", "Content-Length": "0"}
    )
    assert copied.status_code == 201, copied.text
    try:
        res = _fleece_cli(swift_cloud, f"swift:{container}/{odd}", tmp_path)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr
        (report,) = json.loads(res.stdout)
        check_report(report, image, root)
    finally:
        swift_conn.object_store.delete(odd_path)


def test_fleece_swift_missing_object_is_a_clear_error(swift_cloud, swift_object, tmp_path):
    container, _name, _image, _root = swift_object
    res = _fleece_cli(swift_cloud, f"swift:{container}/no-such-object", tmp_path)
    assert res.returncode == 2, (res.returncode, res.stderr)  # the CLI's "no OS found" exit
    (report,) = json.loads(res.stdout)
    assert not any((report["os"] or {}).values()) and report["packages"] == []
    assert any("HTTP 404" in e and f"/{container}/no-such-object" in e for e in report["errors"]), report["errors"]
