"""A real OpenSSH server on 127.0.0.1 for the SFTP fleece tests, and the client-side files that reach it.

Why not a fake: the sftp:// source and `--via hypervisor` depend on what a real sshd does with keys,
host keys, unknown users and missing files, and on paramiko talking to OpenSSH's sftp server. The
server runs `/usr/sbin/sshd -D -e` (foreground, log to stderr) with its own config, host key and
authorized_keys in a temporary directory; only key logins for the current user are accepted.
The client side is what an operator writes: an OpenSSH client config (`Host` alias -> HostName, Port,
User, IdentityFile, UserKnownHostsFile) and a known_hosts line for the server's host key.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class SSHServer:
    """A running sshd and the client files for it."""

    host: str
    port: int
    user: str
    key: Path  # private key whose public half is in authorized_keys
    known_hosts: Path  # "[127.0.0.1]:port <host key>"
    log: Path  # sshd's stderr (-e): why a login was refused

    def url(self, path: str | os.PathLike, user: str | None = None) -> str:
        return f"sftp://{user or self.user}@{self.host}:{self.port}{path}"

    def client_config(self, directory: Path, alias: str | None = None, key: Path | None = None) -> Path:
        """An ssh client config whose `Host` entry (the alias, or 127.0.0.1 itself) reaches this server."""
        cfg = directory / f"ssh_config-{alias or 'direct'}-{(key or self.key).name}"
        cfg.write_text(
            f"Host {alias or self.host}\n"
            f"  HostName {self.host}\n"
            f"  Port {self.port}\n"
            f"  User {self.user}\n"
            f"  IdentityFile {key or self.key}\n"
            "  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts}\n"
            "  ConnectTimeout 10\n"
        )
        return cfg


def keygen(path: Path, comment: str) -> Path:
    """An ed25519 key pair without passphrase (path, path.pub)."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_banner(port: int, proc: subprocess.Popen, log: Path, seconds: float = 15.0) -> None:
    """Until sshd answers with its SSH banner (it listens before it is ready to talk)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(64).startswith(b"SSH-2.0-"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"sshd did not answer on port {port} within {seconds} s: {log.read_text()[-2000:]}")


def start_sshd(directory: Path) -> tuple[subprocess.Popen, SSHServer]:
    """Start sshd in the foreground with files under `directory`; a port race is retried with a new port."""
    directory.mkdir(parents=True, exist_ok=True)
    host_key = keygen(directory / "ssh_host_ed25519_key", "stackwatch-test-host")
    user_key = keygen(directory / "id_ed25519", "stackwatch-test-user")
    shutil.copy(directory / "id_ed25519.pub", directory / "authorized_keys")
    user = getpass.getuser()
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    log = directory / "sshd.log"
    for _attempt in range(3):
        port = free_port()
        config = directory / "sshd_config"
        config.write_text(
            f"ListenAddress 127.0.0.1:{port}\n"
            f"HostKey {host_key}\n"
            f"PidFile {directory / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {directory / 'authorized_keys'}\n"
            f"AllowUsers {user}\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n"
            "StrictModes no\n"
            "UsePAM no\n"
            "LoginGraceTime 20\n"
            "Subsystem sftp internal-sftp\n"
        )
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log.open("ab"),
        )
        try:
            _wait_banner(port, proc, log)
        except RuntimeError:
            stop(proc)
            if "Address already in use" in log.read_text():
                continue
            raise
        pub = (directory / "ssh_host_ed25519_key.pub").read_text().split()
        known = directory / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
        return proc, SSHServer("127.0.0.1", port, user, user_key, known, log)
    raise RuntimeError(f"sshd could not bind a free port: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL: the listener exits and takes nothing else down (we only own this pid)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def missing() -> str | None:
    """Why sshd cannot run here, or None."""
    if not Path(SSHD).exists() or not shutil.which("ssh-keygen"):
        return "OpenSSH server not installed (apt-get install openssh-server; .ci/run does)"
    if os.geteuid() != 0 and not Path("/run/sshd").is_dir():
        return "sshd needs /run/sshd (created as root)"
    return None


def require_sshd() -> None:
    """Skip the calling test when sshd cannot run here, saying why; under CI (`$CI` set: .ci/run installs
    openssh-server) fail instead, so a broken install cannot pass as a row of skips."""
    why = missing()
    if why is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI is set, where it must be installed")
    pytest.skip(why)


@pytest.fixture
def sshd_binary() -> None:
    """For a test that starts its own sshd (start_sshd): skip, or fail under CI, when it cannot run here."""
    require_sshd()


@pytest.fixture(scope="session")
def sshd(tmp_path_factory) -> Iterator[SSHServer]:
    """One sshd for the session (its log, `log`, says why a login was refused), stopped at the end."""
    require_sshd()
    proc, srv = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield srv
    finally:
        stop(proc)
