"""Over HTTP, a backing file name or a redirect never takes a read, or the Keystone token, off the image's
origin. Two real loopback servers (tests/fleece/origins.py): the image origin and a "foreign" one serving
the same files, so any request that reached it would succeed; every request each one gets is recorded.
`glance:` and `swift:` go through openstacksdk and keystoneauth for real (clouds.yaml with an admin token
and endpoint overrides), whose session puts X-Auth-Token on every request it sends, wherever it goes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from stackwatch.fleece.targets import SourceOptions
from stackwatch.fleece.worker import Limits, run_isolated
from tests.fleece import origins
from tests.fleece.chains import HOSTNAME, guest, overlay

TOKEN = "gAAAAA-fleece-test-token-0123456789"
LIMITS = Limits(memory_mib=512, seconds=60)
IMAGES = "image/v2/images"


@pytest.fixture
def world(tools, tmp_path: Path, monkeypatch):
    """Origin and foreign servers over copies of one tree, and a clouds.yaml cloud `fake` on the origin."""
    www = tmp_path / "www"
    guest(www / IMAGES / "good" / "base.raw")
    guest(www / IMAGES / "other" / "file", hostname="other-tenant")
    overlay(www / IMAGES / "good" / "file", "base.raw")
    (www / "plain").mkdir()
    shutil.copy(www / IMAGES / "good" / "base.raw", www / "plain" / "base.raw")
    shutil.copy(www / IMAGES / "good" / "base.raw", www / "plain" / "secret.raw")
    shutil.copytree(www, tmp_path / "foreign")
    origin, foreign = origins.start(str(www)), origins.start(str(tmp_path / "foreign"))
    origins.glance_versions(origin)
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  fake:\n    auth_type: admin_token\n"
        f"    auth:\n      endpoint: {origin.url}\n      token: {TOKEN}\n"
        f"    image_endpoint_override: {origin.url}image\n"
        f"    object_store_endpoint_override: {origin.url}swift/v1/AUTH_p\n"
        "    region_name: RegionOne\n"
    )
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    yield SimpleNamespace(www=www, origin=origin, foreign=foreign)
    origin.stop()
    foreign.stop()


def fleece(target: str) -> dict:
    return run_isolated(target, SourceOptions(cloud="fake"), LIMITS)


def glance_image(world, image_id: str, backing: str) -> str:
    overlay(world.www / IMAGES / image_id / "file", backing)
    return f"glance:{image_id}"


def assert_nothing_left(world) -> None:
    """The foreign server got no request at all; the token went to the origin (so a leak would have shown)."""
    assert world.foreign.seen == [], world.foreign.paths()
    assert world.origin.with_header("X-Auth-Token", TOKEN), world.origin.paths()


def test_glance_backing_beside_the_image_is_read_with_the_token(world):
    rep = fleece("glance:good")
    assert rep["hostname"] == HOSTNAME and rep["errors"] == [], rep["errors"]
    tokened = world.origin.with_header("X-Auth-Token", TOKEN)
    assert f"/{IMAGES}/good/file" in tokened and f"/{IMAGES}/good/base.raw" in tokened
    assert world.foreign.seen == []


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("http://127.0.0.1:FOREIGN/image/v2/images/good/base.raw", "a URL of its own (http:)"),
        ("//127.0.0.1:FOREIGN/image/v2/images/good/base.raw", "a scheme-relative URL names another host"),
        ("https://host.example/x", "a URL of its own (https:)"),
        ("../other/file", "'..' leaves the image's directory"),  # another tenant's image, with our token
        ("/image/v2/images/other/file", "an absolute path"),
    ],
)
def test_glance_backing_off_the_image_is_refused(world, name, rule):
    name = name.replace("FOREIGN", str(world.foreign.port))
    rep = fleece(glance_image(world, "hostile", name))
    assert rep["os"]["id"] is None, rep
    assert any(f"glance:hostile: backing file {name!r} refused: {rule}" in e for e in rep["errors"]), rep["errors"]
    assert_nothing_left(world)
    assert not any("/other/" in p for p in world.origin.paths())  # nor another image on the origin itself


def test_swift_backing_rules(world):
    container = world.www / "swift/v1/AUTH_p/images"
    overlay(container / "disk.qcow2", "base.raw")
    shutil.copy(world.www / IMAGES / "good" / "base.raw", container / "base.raw")
    rep = fleece("swift:images/disk.qcow2")
    assert rep["hostname"] == HOSTNAME and rep["errors"] == [], rep["errors"]
    name = f"//127.0.0.1:{world.foreign.port}/plain/base.raw"
    overlay(container / "evil.qcow2", name)
    rep = fleece("swift:images/evil.qcow2")
    assert any(f"backing file {name!r} refused: a scheme-relative URL" in e for e in rep["errors"]), rep["errors"]
    assert_nothing_left(world)


@pytest.mark.parametrize("name", ["http://127.0.0.1:FOREIGN/plain/base.raw", "//127.0.0.1:FOREIGN/plain/base.raw"])
def test_plain_http_backing_on_another_port_is_refused(world, name):
    name = name.replace("FOREIGN", str(world.foreign.port))
    overlay(world.www / "plain" / "disk.qcow2", name)
    rep = fleece(f"{world.origin.url}plain/disk.qcow2")
    assert any(f"backing file {name!r} refused" in e for e in rep["errors"]), rep["errors"]
    assert world.foreign.seen == []
    overlay(world.www / "plain" / "disk.qcow2", "base.raw")  # the control: beside it, it is read
    rep = fleece(f"{world.origin.url}plain/disk.qcow2")
    assert rep["hostname"] == HOSTNAME and "/plain/base.raw" in world.origin.paths()


def test_keystoneauth_alone_sends_the_token_to_a_foreign_redirect(world):
    """Why fleece follows redirects itself: keystoneauth re-sends X-Auth-Token to wherever Location points
    (and the foreign server's log, asserted empty elsewhere, does record what reaches it)."""
    from stackwatch.fleece import openstack

    world.origin.redirects[f"/{IMAGES}/moved/file"] = f"{world.foreign.url}plain/secret.raw"
    session = openstack.connect("fake").session
    resp = session.get(f"{world.origin.url}{IMAGES}/moved/file", raise_exc=False, headers={"Range": "bytes=0-0"})
    assert resp.status_code == 206
    assert world.foreign.with_header("X-Auth-Token", TOKEN) == ["/plain/secret.raw"]


@pytest.mark.parametrize("target", ["glance:moved", "ORIGIN/image/v2/images/moved/file"])
def test_redirect_to_another_origin_is_refused(world, target):
    world.origin.redirects[f"/{IMAGES}/moved/file"] = f"{world.foreign.url}plain/secret.raw"
    target = target.replace("ORIGIN/", world.origin.url)
    rep = fleece(target)
    assert rep["os"]["id"] is None
    want = f"the server redirected to another origin, http://127.0.0.1:{world.foreign.port}; not followed"
    assert any(want in e for e in rep["errors"]), rep["errors"]
    assert not any("secret" in e for e in rep["errors"])  # the Location's path is not repeated
    assert world.foreign.seen == []


def test_redirect_on_the_same_origin_is_followed(world):
    world.origin.redirects[f"/{IMAGES}/here/file"] = f"/{IMAGES}/good/file"
    rep = fleece("glance:here")
    assert rep["hostname"] == HOSTNAME, rep["errors"]
    assert f"/{IMAGES}/good/file" in world.origin.with_header("X-Auth-Token", TOKEN)
    world.origin.redirects[f"/{IMAGES}/loop/file"] = f"/{IMAGES}/loop/file"
    rep = fleece("glance:loop")
    assert any("more than 5 redirects" in e for e in rep["errors"]), rep["errors"]
    assert world.foreign.seen == []
