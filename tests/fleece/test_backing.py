"""Backing files named in a qcow2 header are read only inside the image's source (fleece/backing.py).

Local images here, through the real worker (run_isolated): the header names are written by qemu-img, and
every file a refused name points at exists and is a valid guest, so only the rule can stop the read (the
`allowed` controls read the same files once the operator allows their directory). The HTTP origins are in
test_backing_http.py, the SFTP host in test_sftp.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from stackwatch.fleece.backing import http_url
from stackwatch.fleece.container import MAX_CHAIN, open_disk
from stackwatch.fleece.errors import BackingFileRefused, LimitExceeded
from stackwatch.fleece.targets import SourceOptions, open_source
from stackwatch.fleece.worker import Limits, run_isolated
from tests.fleece.chains import HOSTNAME, chain, guest, overlay

LIMITS = Limits(memory_mib=512, seconds=60)


def fleece(path: Path, **opts) -> dict:
    return run_isolated(str(path), SourceOptions(**opts), LIMITS)


def assert_refused(rep: dict, name: str, rule: str) -> None:
    assert rep["os"]["id"] is None and rep["hostname"] is None, rep
    assert any(f"backing file {name!r} refused: " in e and rule in e for e in rep["errors"]), rep["errors"]


@pytest.fixture
def images(tools, tmp_path: Path) -> Path:
    """images/base.raw (a guest), and outside/base.raw: the same guest in a directory next to it."""
    d = tmp_path / "images"
    d.mkdir()
    guest(d / "base.raw")
    (tmp_path / "outside").mkdir()
    guest(tmp_path / "outside" / "base.raw", hostname="outside")
    return d


@pytest.mark.parametrize("name", ["base.raw", "./base.raw"])
def test_backing_file_beside_the_image_is_read(images, name):
    rep = fleece(overlay(images / "disk.qcow2", name))
    assert rep["hostname"] == HOSTNAME and rep["errors"] == [], rep["errors"]


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("https://host.example/x", "a URL (https:), and the image is a local file"),
        ("//host.example/x", "resolves to /host.example/x, outside"),
        ("../outside/base.raw", "/outside/base.raw, outside"),
        ("/dev/sda", "resolves to /dev/sda, outside"),
        ("OUTSIDE", "/outside/base.raw, outside"),  # the same file by its absolute path
    ],
)
def test_names_off_the_image_directory_are_refused(images, name, rule):
    name = name.replace("OUTSIDE", str(images.parent / "outside" / "base.raw"))
    rep = fleece(overlay(images / "disk.qcow2", name))
    assert_refused(rep, name, rule)
    if "outside" in rule:  # the message says how to allow more
        assert any("--allow-backing-dir DIR" in e for e in rep["errors"]), rep["errors"]


def test_allowed_directory_is_read(images):
    """The operator allows the other directory: the same names are followed (so above, only the rule refused)."""
    outside = images.parent / "outside"
    for name in ("../outside/base.raw", str(outside / "base.raw")):
        rep = fleece(overlay(images / "disk.qcow2", name), backing_dirs=(str(outside),))
        assert rep["hostname"] == "outside" and rep["errors"] == [], (name, rep["errors"])


def test_symlink_out_of_the_directory_is_refused(images):
    (images / "link.raw").symlink_to("../outside/base.raw")
    rep = fleece(overlay(images / "disk.qcow2", "link.raw"))
    assert_refused(rep, "link.raw", f"through a symlink ({images}/link.raw -> {images.parent}/outside/base.raw)")


def test_symlink_inside_the_directory_is_read(images):
    (images / "alias.raw").symlink_to("base.raw")
    rep = fleece(overlay(images / "disk.qcow2", "alias.raw"))
    assert rep["hostname"] == HOSTNAME and rep["errors"] == [], rep["errors"]


def test_device_is_refused_even_in_an_allowed_directory(images):
    rep = fleece(overlay(images / "disk.qcow2", "/dev/null"), backing_dirs=("/dev",))
    assert_refused(rep, "/dev/null", "/dev/null is not a regular file")


def test_fifo_is_refused_without_blocking(images):
    os.mkfifo(images / "pipe.raw")  # an open for reading would wait for a writer forever
    started = time.monotonic()
    rep = fleece(overlay(images / "disk.qcow2", "pipe.raw"))
    assert_refused(rep, "pipe.raw", "pipe.raw is not a regular file")
    assert time.monotonic() - started < 30


def test_chain_of_qcow2_files_is_read(images):
    overlay(images / "c2.qcow2", "base.raw")
    overlay(images / "c1.qcow2", "c2.qcow2", "qcow2")
    rep = fleece(overlay(images / "c0.qcow2", "c1.qcow2", "qcow2"))
    assert rep["hostname"] == HOSTNAME and rep["errors"] == [], rep["errors"]


@pytest.mark.parametrize("kind", ["self", "pair", "alias"])
def test_backing_chain_that_loops_is_refused(images, kind):
    if kind == "self":
        top = overlay(images / "a.qcow2", "a.qcow2", "qcow2")
    elif kind == "pair":
        overlay(images / "b.qcow2", "a.qcow2", "qcow2")
        top = overlay(images / "a.qcow2", "b.qcow2", "qcow2")
    else:  # another name (a symlink) for the image itself: the same file, so the same loop
        (images / "alias.qcow2").symlink_to("a.qcow2")
        top = overlay(images / "a.qcow2", "alias.qcow2", "qcow2")
    rep = fleece(top)
    assert rep["os"]["id"] is None
    assert any("backing chain loops back to" in e for e in rep["errors"]), rep["errors"]


def test_chain_1000_deep_stops_at_the_bound(images):
    top = chain(images / "deep", 1000)
    started = time.monotonic()
    rep = fleece(top)
    assert any(f"backing chain deeper than {MAX_CHAIN} files" in e for e in rep["errors"]), rep["errors"]
    assert time.monotonic() - started < 30
    src = open_source(str(top))  # in this process too: a LimitExceeded, not a RecursionError
    try:
        with pytest.raises(LimitExceeded, match=r"chain-0000\.qcow2 -> .* -> chain-0016\.qcow2 \.\.\.\)"):
            open_disk(src.reader, src.open_backing)
        assert len(src.opened) == MAX_CHAIN  # the image and 15 backing files were opened, no more
    finally:
        src.close()


BASE = "https://images.example:8443/v2/images/1b2c/file"


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("base.raw", "https://images.example:8443/v2/images/1b2c/base.raw"),
        ("./sub/base raw#1?x", "https://images.example:8443/v2/images/1b2c/sub/base%20raw%231%3Fx"),
        ("%2e%2e/other/file", "https://images.example:8443/v2/images/1b2c/%252e%252e/other/file"),
    ],
)
def test_http_names_resolve_beside_the_image(name, url):
    assert http_url(BASE, name, "glance:1b2c") == url


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("https://host.example/x", "a URL of its own (https:)"),
        ("HTTPS://images.example:8443/v2/images/other/file", "a URL of its own (HTTPS:)"),
        ("//host.example/x", "a scheme-relative URL names another host"),
        ("/v2/images/other/file", "an absolute path"),
        ("../other/file", "'..' leaves the image's directory"),
        ("a/../../other/file", "'..' leaves the image's directory"),
        ("..", "'..' leaves the image's directory"),
        ("..\\other\\file", "a backslash"),
        ("base\r\nX-Injected: 1", "the name holds control characters"),
        ("", "the name is empty"),
    ],
)
def test_http_names_off_the_directory_are_refused(name, rule):
    with pytest.raises(BackingFileRefused) as e:
        http_url(BASE, name, "glance:1b2c")
    assert e.value.rule.startswith(rule) and e.value.backing == name and e.value.image == "glance:1b2c"
    assert str(e.value).startswith(f"glance:1b2c: backing file {name!r} refused: {rule}")
    if rule not in ("the name is empty", "the name holds control characters"):
        assert "own origin https://images.example:8443" in e.value.rule
