"""Fleece every built image (local file and over loopback HTTP Range) against the builder's manifest."""

from __future__ import annotations

import json

import pytest

from stackwatch.fleece.sbom import full_version
from stackwatch.fleece.worker import run_isolated

IMAGES = [
    "gpt-ext4-raw",
    "gpt-ext4-qcow2",
    "gpt-ext4-compressed",
    "mbr-ext4-raw",
    "mbr-ext4-qcow2",
    "qcow2-overlay",
    "gpt-xfs",
    "gpt-lvm-ext4",
    "vmdk-sparse",
    "vmdk-stream",
    "vmdk-stream-gd-at-end",
    "mbr-boot-lvm-xfs",
    "rpm-lvm-xfs",
    "rpm-bdb-mbr-ext4",
]
REPORT_KEYS = {
    "target",
    "os",
    "hostname",
    "users",
    "groups",
    "packages",
    "services",
    "kernels",
    "filesystems",
    "io",
    "errors",
}


def _version_of_manifest(p: dict) -> str:
    if "epoch" in p:  # rpm -qa fields
        return full_version({**p, "manager": "rpm"})
    return p["version"]  # dpkg-query ${Version}, already [epoch:]upstream[-revision]


def check_report(rep: dict, image: dict, root: dict) -> None:
    assert set(rep) == REPORT_KEYS
    assert rep["errors"] == []
    assert rep["os"] == root["os"]
    assert rep["hostname"] == image["hostname"]
    assert rep["users"] == root["users"]
    assert rep["groups"] == root["groups"]
    assert len(rep["packages"]) == len(root["packages"])
    got = {(p["name"], full_version(p), p["arch"]) for p in rep["packages"]}
    want = {(p["name"], _version_of_manifest(p), p["arch"]) for p in root["packages"]}
    assert got == want
    assert {p["manager"] for p in rep["packages"]} == {root["manager"]}
    assert rep["services"] == {"enabled": root["enabled_units"]}
    assert rep["kernels"] == root["kernels"]
    assert [{k: f[k] for k in ("type", "label", "mountpoint")} for f in rep["filesystems"]] == image["filesystems"]
    assert root["shadow_secret"] not in json.dumps(rep)
    io = rep["io"]
    assert io["image_size"] == image["size"]
    assert io["bytes_read"] > 0 and io["requests"] > 0


@pytest.mark.parametrize("name", IMAGES)
def test_local_image(built, name):
    d, m = built
    image = m["images"][name]
    rep = run_isolated(str(d / image["file"]))
    check_report(rep, image, m["roots"][image["root"]])


@pytest.mark.parametrize("name", IMAGES)
def test_http_range_image(built, server, name):
    d, m = built
    srv, url = server
    image = m["images"][name]
    before = srv.requests
    rep = run_isolated(url + image["file"])
    check_report(rep, image, m["roots"][image["root"]])
    assert srv.requests - before == rep["io"]["requests"]  # every counted request reached the server
    assert rep["io"]["requests"] <= 40  # the goal, probe and backing file included


def test_exact_epochs(built):
    """Versions with epochs, as the builder's dpkg-query / rpm -qa recorded them."""
    d, m = built
    deb = run_isolated(str(d / m["images"]["gpt-ext4-qcow2"]["file"]))
    with_epoch = [p for p in m["roots"]["debian"]["packages"] if ":" in p["version"]]
    assert with_epoch, "bookworm minbase has packages with epochs (e.g. sysvinit-utils? zlib1g is 1:...)"
    by_name = {p["name"]: p for p in deb["packages"]}
    for p in with_epoch:
        epoch, rest = p["version"].split(":", 1)
        got = by_name[p["name"]]
        assert got["epoch"] == int(epoch)
        assert f"{got['version']}-{got['release']}" == rest or (got["version"] == rest and not got["release"])
    rpm = run_isolated(str(d / m["images"]["rpm-lvm-xfs"]["file"]))
    want = {p["name"]: (p["epoch"], p["version"], p["release"]) for p in m["roots"]["rpm"]["packages"]}
    got = {p["name"]: (p["epoch"], p["version"], p["release"]) for p in rpm["packages"]}
    assert got == want
    assert any(e > 0 for e, _, _ in got.values())


def test_overlay_reads_backing_file(built):
    """The Nova-style overlay holds only changed clusters: the rest must come from the raw base."""
    d, m = built
    image = m["images"]["qcow2-overlay"]
    assert (d / image["file"]).stat().st_size < (d / image["backing"]).stat().st_blocks * 512
    rep = run_isolated(str(d / image["file"]))
    assert rep["hostname"] == "nova-overlay" and rep["io"]["bytes_read"] > 0


def test_linear_lv_is_read_at_its_extent_with_libvslvm_bytes(built):
    """Our extent map of a linear LV gives the same bytes as libvslvm (which reads in 64 KiB chunks)."""
    import pyvslvm

    from stackwatch.fleece.blockio import LocalReader, SliceReader
    from stackwatch.fleece.container import open_disk
    from stackwatch.fleece.volume import find_volumes

    d, m = built
    _, disk = open_disk(LocalReader(d / m["images"]["gpt-lvm-ext4"]["file"]))
    scan = find_volumes(disk)
    root = next(v for v in scan.volumes if v.device == "vg0/root")
    assert isinstance(root.reader, SliceReader)
    pv = SliceReader(disk, root.reader.base.offset, root.reader.base.size)  # the LVM partition
    h = pyvslvm.handle()
    h.open_file_object(pv)
    h.open_physical_volume_files_as_file_objects([pv])
    lv = next(x for x in h.get_volume_group().logical_volumes if x.name == "root")
    assert lv.size == root.reader.size
    for off in (0, 1024, 5 << 20, lv.size - 8192):
        assert root.reader.pread(off, 8192) == lv.read_buffer_at_offset(8192, off)
