"""Fleece over sftp:// against a real OpenSSH server (tests/fleece/sshd.py): built images, the Nova
`_base` layout, and the failures an operator meets (missing file, refused login, unknown host key,
a host that never answers), each a SourceError in seconds rather than a hang."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from stackwatch.fleece.errors import SourceError
from stackwatch.fleece.targets import SourceOptions, open_source
from stackwatch.fleece.worker import run_isolated
from tests.fleece.chains import guest, overlay
from tests.fleece.sshd import SSHServer, keygen, sshd, sshd_binary, start_sshd, stop  # noqa: F401 - fixtures
from tests.fleece.test_images import check_report

HYPERVISOR = "compute-7.example"  # a Nova hypervisor hostname DNS does not know: the ssh config maps it


@pytest.fixture(scope="module")
def ssh_config(sshd: SSHServer, tmp_path_factory) -> Path:  # noqa: F811
    """The operator's ssh client config: 127.0.0.1 itself and a hypervisor alias, both with our key."""
    d = tmp_path_factory.mktemp("client")
    direct = sshd.client_config(d).read_text()
    alias = sshd.client_config(d, alias=HYPERVISOR).read_text()
    cfg = d / "config"
    cfg.write_text(direct + alias)
    return cfg


def nova_layout(root: Path, image: Path, backing: Path, server_id: str | None = None) -> Path:
    """`<root>/<uuid>/disk`: a copy of the overlay whose backing file name is Nova's absolute `_base/<hash>`.

    `qemu-img rebase -u` rewrites only the header's backing name, so the guest contents (and the
    manifest) stay those of the builder's overlay; `_base/<hash>` is a symlink to the raw base, as big
    as Nova's cached image would be.
    """
    base = root / "_base" / uuid.uuid4().hex  # Nova names it by the sha1 of the Glance image id
    base.parent.mkdir(parents=True, exist_ok=True)
    base.symlink_to(backing)
    disk = root / (server_id or str(uuid.uuid4())) / "disk"
    disk.parent.mkdir(parents=True)
    shutil.copyfile(image, disk)
    subprocess.run(["qemu-img", "rebase", "-u", "-f", "qcow2", "-b", str(base), "-F", "raw", str(disk)], check=True)
    return disk


def check_cheap(rep: dict, file_size: int) -> None:
    """The issue's goals over a remote source: <= 40 requests, a small fraction of the file (about 1 %
    measured here; 2 % leaves room for a rebuilt image without letting a whole-file read pass)."""
    io = rep["io"]
    assert io["requests"] <= 40, io
    assert 0 < io["bytes_read"] < 0.02 * file_size, io


@pytest.mark.parametrize("name", ["gpt-ext4-qcow2", "gpt-ext4-compressed", "gpt-lvm-ext4"])
def test_sftp_image(built, sshd, ssh_config, name):  # noqa: F811
    d, m = built
    image = m["images"][name]
    rep = run_isolated(sshd.url(d / image["file"]), SourceOptions(ssh_config=str(ssh_config)))
    root = m["roots"][image["root"]]
    check_report(rep, image, root)  # OS, hostname, users, groups, every package and version, units
    assert rep["os"]["pretty_name"] == "Debian GNU/Linux 12 (bookworm)"
    assert len(rep["packages"]) == len(root["packages"]) > 50
    versions = {p["name"]: p["version"] for p in root["packages"]}
    got = {p["name"]: p for p in rep["packages"]}
    for pkg in ("dpkg", "base-files", "libc6"):
        assert got[pkg]["version"] in versions[pkg]  # manifest holds [epoch:]version-revision
    check_cheap(rep, (d / image["file"]).stat().st_size)


def test_sftp_overlay_backing_beside_it(built, sshd, ssh_config):  # noqa: F811
    """The builder's overlay names its raw base relatively: it is opened over the same SFTP session."""
    d, m = built
    image = m["images"]["qcow2-overlay"]
    rep = run_isolated(sshd.url(d / image["file"]), SourceOptions(ssh_config=str(ssh_config)))
    check_report(rep, image, m["roots"][image["root"]])  # packages live in clusters only the base holds
    assert rep["hostname"] == "nova-overlay"
    check_cheap(rep, (d / image["backing"]).stat().st_size)  # the guest is mostly in the base: its share


def test_sftp_nova_layout_through_a_host_alias(built, sshd, ssh_config, tmp_path):  # noqa: F811
    """Nova's layout: instances/<uuid>/disk over an absolute instances/_base/<hash>, reached by the
    hypervisor's name that only the ssh config resolves (HostName, Port, User, IdentityFile)."""
    d, m = built
    image = m["images"]["qcow2-overlay"]
    instances = tmp_path / "instances"
    disk = nova_layout(instances, d / image["file"], d / image["backing"])
    opts = SourceOptions(ssh_config=str(ssh_config), instances_path=str(instances))
    rep = run_isolated(f"sftp://{HYPERVISOR}{disk}", opts)
    check_report(rep, image, m["roots"][image["root"]])
    assert rep["target"] == f"sftp://{HYPERVISOR}{disk}"
    check_cheap(rep, (d / image["backing"]).stat().st_size)
    # the same disk where the instances path is another (Nova's default): its `_base` is no longer the
    # image's source, so the absolute backing name is refused, and says how to allow it
    rep = run_isolated(f"sftp://{HYPERVISOR}{disk}", SourceOptions(ssh_config=str(ssh_config)))
    assert rep["packages"] == [] and any(
        f"refused: resolves to {instances}/_base/" in e and f"outside {disk.parent} on that host" in e
        for e in rep["errors"]
    ), rep["errors"]


def test_missing_path_is_a_clear_error(sshd, ssh_config, tmp_path):  # noqa: F811
    url = sshd.url(tmp_path / "no-such-disk")
    with pytest.raises(SourceError, match=r"cannot open .*no-such-disk over SFTP: No such file"):
        open_source(url, SourceOptions(ssh_config=str(ssh_config)))
    rep = run_isolated(url, SourceOptions(ssh_config=str(ssh_config)))
    assert rep["packages"] == [] and any("No such file" in e for e in rep["errors"]), rep["errors"]


def test_missing_backing_file_is_a_clear_error(built, sshd, ssh_config, tmp_path):  # noqa: F811
    d, m = built
    image = m["images"]["qcow2-overlay"]
    disk = nova_layout(tmp_path / "instances", d / image["file"], d / image["backing"])
    next((tmp_path / "instances" / "_base").iterdir()).unlink()  # Nova's image cache cleaned it away
    rep = run_isolated(
        sshd.url(disk), SourceOptions(ssh_config=str(ssh_config), instances_path=str(tmp_path / "instances"))
    )
    assert any("_base" in e and "No such file" in e for e in rep["errors"]), rep["errors"]


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("../../outside/base.raw", "/outside/base.raw, outside"),
        ("INSTANCES/_base/../../outside/base.raw", "/outside/base.raw, outside"),
        ("INSTANCES/other-instance/disk", "/instances/other-instance/disk, outside"),
        ("/dev/sda", "resolves to /dev/sda, outside"),
        ("//host.example/x", "resolves to /host.example/x, outside"),
        ("https://host.example/x", "a URL (https:), and the image is on an SFTP host"),
    ],
)
def test_backing_off_the_instance_is_refused(tools, sshd, ssh_config, tmp_path, name, rule):  # noqa: F811
    """A hypervisor's disk may name its own directory and Nova's `_base`, nothing else on that host (every
    refused name points at a real, valid guest: without the rule it would be read)."""
    instances = tmp_path / "instances"
    guest(tmp_path / "outside" / "base.raw", hostname="outside")
    guest(instances / "other-instance" / "disk", hostname="other")
    name = name.replace("INSTANCES", str(instances))
    disk = overlay(instances / str(uuid.uuid4()) / "disk", name)
    rep = run_isolated(sshd.url(disk), SourceOptions(ssh_config=str(ssh_config), instances_path=str(instances)))
    assert rep["hostname"] is None, rep
    assert any(f"backing file {name!r} refused: " in e and rule in e for e in rep["errors"]), rep["errors"]


def test_backing_in_base_or_an_allowed_directory_is_read(tools, sshd, ssh_config, tmp_path):  # noqa: F811
    instances = tmp_path / "instances"
    guest(instances / "_base" / "0a1b2c", hostname="cached")
    guest(tmp_path / "images" / "base.raw", hostname="allowed")
    opts = SourceOptions(ssh_config=str(ssh_config), instances_path=str(instances))
    rep = run_isolated(sshd.url(overlay(instances / str(uuid.uuid4()) / "disk", f"{instances}/_base/0a1b2c")), opts)
    assert rep["hostname"] == "cached" and rep["errors"] == [], rep["errors"]
    disk = overlay(instances / str(uuid.uuid4()) / "disk", "../../images/base.raw")
    allowed = SourceOptions(
        ssh_config=str(ssh_config), instances_path=str(instances), backing_dirs=(str(tmp_path / "images"),)
    )
    rep = run_isolated(sshd.url(disk), allowed)
    assert rep["hostname"] == "allowed" and rep["errors"] == [], rep["errors"]
    disk = overlay(instances / str(uuid.uuid4()) / "disk", "/dev/null")  # allowed directory, but a device
    rep = run_isolated(sshd.url(disk), SourceOptions(ssh_config=str(ssh_config), backing_dirs=("/dev",)))
    assert any("refused: /dev/null is not a regular file" in e for e in rep["errors"]), rep["errors"]


def test_refused_login_is_a_clear_error(sshd, tmp_path):  # noqa: F811
    """A key the server does not authorize: refused by sshd, reported as such, in well under the timeout."""
    stranger = keygen(tmp_path / "id_stranger", "not-authorized")
    cfg = sshd.client_config(tmp_path, key=stranger)
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"SSH login to .*127\.0\.0\.1:\d+ refused"):
        open_source(sshd.url("/etc/hostname"), SourceOptions(ssh_config=str(cfg)))
    assert time.monotonic() - started < 10
    assert "Failed publickey" in sshd.log.read_text() or "Connection closed" in sshd.log.read_text()
    rep = run_isolated(sshd.url("/etc/hostname"), SourceOptions(ssh_key=str(stranger), ssh_config=str(cfg)))
    assert any("refused" in e for e in rep["errors"]), rep["errors"]


def test_unknown_host_key_is_refused(sshd, tmp_path):  # noqa: F811
    """Without the server's key in known_hosts we do not connect (no trust on first use)."""
    cfg = sshd.client_config(tmp_path)
    cfg.write_text(cfg.read_text().replace(f"UserKnownHostsFile {sshd.known_hosts}", "UserKnownHostsFile /dev/null"))
    with pytest.raises(SourceError, match="host key of .* is unknown"):
        open_source(sshd.url("/etc/hostname"), SourceOptions(ssh_config=str(cfg)))


def test_silent_host_times_out(sshd, tmp_path):  # noqa: F811
    """A port that accepts and never speaks SSH (a hung sshd, a wrong port mapping): ConnectTimeout, no hang."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    accepting = threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True)
    accepting.start()
    cfg = tmp_path / "config"
    cfg.write_text(f"Host silent\n  HostName 127.0.0.1\n  Port {port}\n  ConnectTimeout 2\n")
    started = time.monotonic()
    try:
        with pytest.raises(SourceError, match=r"silent/disk: SSH connection .* no SSH server answered within 2 s"):
            open_source("sftp://silent/disk", SourceOptions(ssh_config=str(cfg)))
    finally:
        for s in held:
            s.close()
        listener.close()
    assert 1.5 < time.monotonic() - started < 10


def test_connection_refused_is_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    (tmp_path / "empty").write_text("")
    with pytest.raises(SourceError, match=rf"127\.0\.0\.1:{port} failed"):
        open_source(f"sftp://127.0.0.1:{port}/disk", SourceOptions(ssh_config=str(tmp_path / "empty")))


def _descendants(pid: int) -> list[int]:
    """Child processes of `pid`, recursively (sshd forks a process per connection, then a session child)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def test_stalled_read_times_out(tmp_path, sshd_binary):  # noqa: F811
    """The server stops answering after the file is open (a frozen hypervisor): the next read fails after
    ConnectTimeout, which also bounds every SFTP reply, instead of blocking the worker until its limit."""
    from stackwatch.fleece.sftp import open_sftp

    proc, srv = start_sshd(tmp_path / "sshd")  # its own sshd: this test freezes its connection processes
    frozen: list[int] = []
    try:
        cfg = srv.client_config(tmp_path)
        cfg.write_text(cfg.read_text().replace("ConnectTimeout 10", "ConnectTimeout 2"))
        blob = tmp_path / "blob"
        blob.write_bytes(os.urandom(4 << 20))
        reader = open_sftp(srv.url(blob), ssh_config=str(cfg))
        assert reader.pread(0, 100) == blob.read_bytes()[:100]
        frozen = _descendants(proc.pid)
        assert frozen, "sshd forks a process for our connection"
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(SourceError, match=r"SFTP read of \d+ bytes at 3145728 failed"):
            reader.pread(3 << 20, 100)
        assert 1.5 < time.monotonic() - started < 10
    finally:
        for pid in frozen:
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        stop(proc)


def test_instance_via_hypervisor_reads_the_nova_layout(built, sshd, ssh_config, tmp_path, monkeypatch):  # noqa: F811
    """runner.fleece_one(instance:UUID, via=hypervisor) with everything real but Nova (its API answer is
    a stub here; tests/devcloud/test_fleece_hypervisor.py asks a real Nova): the hypervisor's name maps
    through the ssh config, the disk and its `_base` file are read from `instances_path` over SFTP."""
    from stackwatch.fleece import openstack
    from stackwatch.fleece.runner import fleece_one
    from stackwatch.fleece.worker import Limits

    d, m = built
    image = m["images"]["qcow2-overlay"]
    server_id = str(uuid.uuid4())
    instances = tmp_path / "nova" / "instances"
    nova_layout(instances, d / image["file"], d / image["backing"], server_id)
    asked: list[str] = []

    def get_server(sid: str) -> SimpleNamespace:
        asked.append(sid)
        return SimpleNamespace(hypervisor_hostname=HYPERVISOR, compute_host="compute-7")

    monkeypatch.setattr(
        openstack, "connect", lambda cloud: SimpleNamespace(compute=SimpleNamespace(get_server=get_server))
    )
    opts = SourceOptions(ssh_config=str(ssh_config), instances_path=str(instances))
    rep = fleece_one(f"instance:{server_id}", opts, Limits(), via="hypervisor")
    assert asked == [server_id]
    assert rep["target"] == f"instance:{server_id}"
    check_report(rep, image, m["roots"][image["root"]])
    check_cheap(rep, (d / image["backing"]).stat().st_size)
    rep = fleece_one(f"instance:{uuid.uuid4()}", opts, Limits(), via="hypervisor")  # no disk on that host
    assert any("No such file" in e and f"sftp://{HYPERVISOR}{instances}/" in e for e in rep["errors"]), rep["errors"]


def test_hypervisor_disk_url_honours_the_instances_path(monkeypatch):
    from stackwatch.fleece import openstack

    conn = SimpleNamespace(
        compute=SimpleNamespace(get_server=lambda sid: SimpleNamespace(hypervisor_hostname="cn1", compute_host="c"))
    )
    monkeypatch.delenv(openstack.INSTANCES_PATH_ENV, raising=False)
    assert openstack.hypervisor_disk_url(conn, "u1") == "sftp://cn1/var/lib/nova/instances/u1/disk"
    monkeypatch.setenv(openstack.INSTANCES_PATH_ENV, "/srv/nova/instances/")
    assert openstack.hypervisor_disk_url(conn, "u1", user="nova") == "sftp://nova@cn1/srv/nova/instances/u1/disk"
    assert openstack.hypervisor_disk_url(conn, "u1", instances_path="/x") == "sftp://cn1/x/u1/disk"
    with pytest.raises(SourceError, match="must be absolute"):
        openstack.hypervisor_disk_url(conn, "u1", instances_path="relative")
    nohost = SimpleNamespace(
        compute=SimpleNamespace(get_server=lambda sid: SimpleNamespace(hypervisor_hostname=None, compute_host=None))
    )
    with pytest.raises(SourceError, match="admin role"):
        openstack.hypervisor_disk_url(nohost, "u1")
