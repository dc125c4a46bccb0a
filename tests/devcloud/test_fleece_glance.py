"""Fleece through devcloud's real Glance: `glance:ID` reads the uploaded qcow2 with HTTP Range (206).

The image is one the project's builder made from real Debian packages; the report must equal the builder's
manifest, exactly as for the local file, while reading a small fraction of it.
"""

from __future__ import annotations

import pytest

from stackwatch.fleece.targets import SourceOptions
from stackwatch.fleece.worker import run_isolated
from tests.fleece.conftest import built, tools  # noqa: F401 - session fixtures of the fleece images
from tests.fleece.test_images import check_report

pytestmark = pytest.mark.devcloud
IMAGE = "gpt-ext4-compressed"  # the smallest Debian qcow2 the builder makes


@pytest.fixture
def glance_image(devcloud_cloud, devcloud_conn, built):  # noqa: F811
    directory, manifest = built
    image = manifest["images"][IMAGE]
    uploaded = devcloud_conn.image.create_image(
        name=f"fleece-{IMAGE}", filename=str(directory / image["file"]), disk_format="qcow2",
        container_format="bare", wait=True,
    )
    try:
        yield uploaded, image, manifest["roots"][image["root"]]
    finally:
        devcloud_conn.image.delete_image(uploaded.id, ignore_missing=True)


def test_fleece_glance_image_with_ranged_reads(devcloud_cloud, glance_image, monkeypatch):
    uploaded, image, root = glance_image
    for key, value in devcloud_cloud.env().items():
        monkeypatch.setenv(key, value)
    report = run_isolated(f"glance:{uploaded.id}", SourceOptions(cloud=devcloud_cloud.cloud))
    check_report(report, image, root)
    io = report["io"]
    assert io["image_size"] == image["size"]
    assert io["requests"] <= 40
    assert io["bytes_read"] < 0.05 * image["size"], io  # ranged reads, not a download


def test_fleece_glance_unknown_image_is_a_clear_error(devcloud_cloud, monkeypatch):
    for key, value in devcloud_cloud.env().items():
        monkeypatch.setenv(key, value)
    report = run_isolated("glance:00000000-0000-0000-0000-000000000000", SourceOptions(cloud=devcloud_cloud.cloud))
    assert not any((report["os"] or {}).values()) and report["packages"] == []
    assert any("HTTP 404" in str(e) and "/v2/images/" in str(e) for e in report["errors"]), report["errors"]
