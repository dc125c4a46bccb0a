"""devcloud pieces that need no running cloud: templates, install stamp, neutron patch, process helpers."""

from __future__ import annotations

import configparser
import os
import socket
import stat

import pytest

from stackwatch.devcloud import cloud, installer, proc, render, services, spec
from stackwatch.devcloud.errors import ServiceError
from stackwatch.devcloud.layout import Layout, Ports

# ports nobody listens on, so a test layout never sees the running devcloud
UNUSED = Ports(keystone=1, glance=2, neutron=3, placement=4, nova=6, rabbit=7, rabbit_dist=8, epmd=9, pg=10)


@pytest.fixture
def layout(tmp_path) -> Layout:
    return Layout(home=tmp_path / "home", ports=UNUSED)


def test_every_placeholder_is_known_and_rendered(tmp_path):
    lay = Layout(home=tmp_path)
    written = render.render_all(lay, "s3cret")
    assert len(written) == len(render.templates()) >= 15
    for path in written:
        text = path.read_text()
        assert render._PLACEHOLDER.search(text) is None, path
        if "s3cret" in text:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_unknown_placeholder_is_an_error():
    with pytest.raises(KeyError, match="@NOPE@"):
        render.substitute("x = @NOPE@", {"ROOT": "/"}, "t.conf")


def test_services_use_private_broker_and_database_ports(tmp_path):
    lay = Layout(home=tmp_path)
    render.render_all(lay, "pw")
    nova = configparser.ConfigParser(interpolation=None, strict=False)
    nova.read(lay.etc / "nova" / "nova.conf")
    assert nova["DEFAULT"]["transport_url"] == "rabbit://guest:guest@127.0.0.1:5682/"
    assert nova["DEFAULT"]["compute_driver"] == "fake.FakeDriver"
    assert nova["notifications"]["notification_format"] == "both"
    assert nova["oslo_messaging_notifications"]["driver"] == "messagingv2"
    assert nova["quota"]["instances"] == "-1"
    assert ":5442/" in nova["database"]["connection"]
    for path in lay.etc.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert ":5672" not in text and ":5432/" not in text, path


def test_every_uwsgi_api_closes_connections(tmp_path):
    # gotcha from the recipe: keystone reset keep-alive connections without it
    lay = Layout(home=tmp_path)
    render.render_all(lay, "pw")
    for svc in services.ALL:
        if svc.uwsgi:
            ini = (lay.etc / svc.uwsgi).read_text()
            assert "add-header = Connection: close" in ini, svc.name
            assert f"pidfile = {lay.run / svc.name}.pid" in ini, svc.name


def test_stamp_changes_with_requirements(monkeypatch):
    before = spec.stamp()
    assert before.startswith(spec.python_tag() + "-")
    changed = (*spec.VENVS[:-1], spec.VenvSpec("neutron", ("neutron==99.0.0",)))
    monkeypatch.setattr(spec, "VENVS", changed)
    assert spec.stamp() != before


def test_not_installed_without_stamp(layout):
    assert not installer.is_installed(layout)
    layout.venvs.mkdir(parents=True)
    layout.stamp_file.write_text("py3.11-other\n")
    assert not installer.is_installed(layout)
    layout.stamp_file.write_text(spec.stamp() + "\n")
    assert installer.is_installed(layout)


def test_neutron_mysql_only_migration_is_guarded_once(layout):
    d = layout.venv("neutron") / "lib/python3.11/site-packages/neutron/db/migration/alembic_migrations"
    f = d / "versions/2025.2/expand/d553edeb540f_tag_case_sensitive.py"
    f.parent.mkdir(parents=True)
    f.write_text("from alembic import op\n\n\ndef upgrade():\n    op.execute('ALTER TABLE tags CONVERT TO x')\n")
    assert installer.patch_neutron(layout)
    assert installer.patch_neutron(layout)
    text = f.read_text()
    assert text.count("dialect.name != 'mysql'") == 1
    ns: dict = {}
    exec(compile(text.replace("from alembic import op", ""), str(f), "exec"), ns)  # the guard is valid Python


def test_listener_pid_finds_this_process():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert proc.listener_pid(s.getsockname()[1]) == os.getpid()


def test_status_and_down_of_a_devcloud_never_started(layout):
    st = cloud.status(layout)
    assert not st.up and not st.any_running
    assert {s.name for s in st.services} == {"rabbitmq", "postgresql"} | {s.name for s in services.ALL}
    assert cloud.down(layout) == []


def test_a_service_that_dies_is_named_with_its_log(layout):
    svc = services.Service("fake-api", "fake", uwsgi="fake/uwsgi.ini", port_attr="keystone")
    exe = layout.bin("fake", "uwsgi")
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\necho 'no such module' >&2\nexit 3\n")
    exe.chmod(0o755)
    layout.logs.mkdir(parents=True)
    cloud._start(layout, svc)
    with pytest.raises(ServiceError) as err:
        cloud._wait_http(layout, svc, timeout=10)
    assert err.value.service == "fake-api"
    assert "exited" in str(err.value) and str(layout.logs / "fake-api-uwsgi.log") in str(err.value)
    assert "no such module" in (layout.logs / "fake-api-uwsgi.log").read_text()


def test_failed_start_stops_what_started_and_names_the_service(layout, monkeypatch):
    started = []

    def fake_start_all(lay, admin_pw, service_pw, mark, timeout):
        pid = proc.spawn(["sleep", "60"], lay.logs / "keystone-uwsgi.log", lay.run / "keystone.pid")
        started.append(pid)
        raise ServiceError("keystone", "did not answer", str(lay.logs / "keystone.log"))

    monkeypatch.setattr(cloud.installer, "ensure_installed", lambda lay, report: False)
    monkeypatch.setattr(cloud, "_check_prerequisites", lambda lay: None)
    monkeypatch.setattr(cloud, "_start_all", fake_start_all)
    with pytest.raises(ServiceError, match="keystone: did not answer"):
        cloud.up(layout)
    assert started and not proc.alive(started[0])
    assert not (layout.run / "keystone.pid").exists()


def test_keystone_bootstrap_password_goes_by_environment_not_argv(layout):
    """A token_urlsafe password may start with "-" (argparse then takes it for an option), and argv is
    logged: keystone-manage must get it from OS_BOOTSTRAP_PASSWORD. A stand-in keystone-manage records what
    it was given."""
    from stackwatch.devcloud import bootstrap

    exe = layout.bin("keystone", "keystone-manage")
    exe.parent.mkdir(parents=True)
    record = layout.home / "calls"
    exe.write_text(f'#!/bin/sh\necho "$* | $OS_BOOTSTRAP_PASSWORD" >> {record}\n')
    exe.chmod(0o755)
    layout.logs.mkdir(parents=True)
    layout.state.mkdir(parents=True, exist_ok=True)
    password = "-Dash1stPassword_x"
    bootstrap.keystone_db(layout, password)
    calls = record.read_text().splitlines()
    boot = [c for c in calls if " bootstrap " in c]
    assert len(calls) == 2 and len(boot) == 1
    args, given = boot[0].rsplit(" | ", 1)
    assert given == password and password not in args
    assert password not in (layout.logs / "keystone-manage.log").read_text()
