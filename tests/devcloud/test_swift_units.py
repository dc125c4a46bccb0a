"""devcloud's optional Swift without a running cloud: templates, ports, cache key, refusals.

The real Swift (rings, servers, Keystone auth, ranged reads) is exercised by test_fleece_swift.py.
"""

from __future__ import annotations

import configparser
import errno
import os
import stat

import pytest

from stackwatch.devcloud import cloud, render, spec, swift
from stackwatch.devcloud.errors import DevcloudError, PrerequisiteError
from stackwatch.devcloud.layout import Layout


def test_default_render_leaves_swift_out(tmp_path):
    lay = Layout(home=tmp_path)
    render.render_all(lay, "pw")
    assert not lay.swift_etc.exists() and not swift.enabled(lay)  # status() shows no Swift rows then


def test_swift_configs_render_completely_and_stay_in_the_state_dir(tmp_path):
    lay = Layout(home=tmp_path)
    extra = {"SWIFT_PASSWORD": "sw1ft", "SWIFT_HASH_PREFIX": "p", "SWIFT_HASH_SUFFIX": "s"}
    written = render.render_all(lay, "", only="swift", extra=extra)
    assert {p.name for p in written} == {
        "swift.conf",
        "proxy-server.conf",
        "account-server.conf",
        "container-server.conf",
        "object-server.conf",
    }
    assert swift.enabled(lay)
    for path in written:
        text = path.read_text()
        assert render._PLACEHOLDER.search(text) is None, path
        if "sw1ft" in text:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    ports = lay.ports.swift()
    for kind in ("account", "container", "object", "proxy"):
        conf = configparser.ConfigParser(interpolation=None)
        conf.read(lay.swift_etc / f"{kind}-server.conf")
        d = conf["DEFAULT"]
        assert d["bind_ip"] == "127.0.0.1" and int(d["bind_port"]) == ports[f"swift_{kind}"]
        assert d["swift_dir"] == str(lay.swift_etc) and d["workers"] == "0"
        if kind != "proxy":
            assert d["devices"] == str(lay.swift_devices)
            assert d["mount_check"] == "false" and d["disable_fallocate"] == "true"
    proxy = configparser.ConfigParser(interpolation=None)
    proxy.read(lay.swift_etc / "proxy-server.conf")
    assert "authtoken keystoneauth" in proxy["pipeline:main"]["pipeline"]
    assert proxy["filter:keystoneauth"]["operator_roles"] == "admin, member"
    assert proxy["filter:authtoken"]["auth_url"] == f"http://127.0.0.1:{lay.ports.keystone}"


def test_swift_ports_are_apart_from_the_core_ones():
    ports = Layout().ports
    assert not set(ports.swift().values()) & set(ports.core().values())
    assert len(set(ports.swift().values())) == 4


def test_the_swift_venv_has_its_own_cache_key(monkeypatch, tmp_path):
    lay = Layout(home=tmp_path)
    assert not lay.venv("swift").is_relative_to(lay.venvs)  # a core reinstall never removes it
    core = spec.stamp()
    monkeypatch.setitem(spec.OPTIONAL_VENVS, "swift", spec.VenvSpec("swift", ("swift==0",)))
    assert spec.stamp() == core  # asking for Swift never invalidates the core install


def test_unknown_optional_service_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(DevcloudError, match="unknown optional devcloud service"):
        cloud.up(Layout(home=tmp_path), services=("cinder",))
    assert not (tmp_path / "venvs").exists()


def test_a_filesystem_without_xattrs_is_named(tmp_path, monkeypatch):
    def no_xattrs(*_a, **_k):
        raise OSError(errno.ENOTSUP, os.strerror(errno.ENOTSUP))

    monkeypatch.setattr(swift.os, "setxattr", no_xattrs)
    with pytest.raises(PrerequisiteError, match="without user xattrs"):
        swift.check_xattrs(tmp_path)
    assert list(tmp_path.iterdir()) == []
