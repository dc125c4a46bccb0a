"""SFTP offset reads (paramiko): a hypervisor's /var/lib/nova/instances/<uuid>/disk and its _base file.

Connection settings come from the operator's OpenSSH client configuration, as `ssh` and `sftp` read it:
`$STACKWATCH_SSH_CONFIG`, else `~/.ssh/config` (`Host` aliases with `HostName`, `Port`, `User`,
`IdentityFile`, `IdentitiesOnly`, `UserKnownHostsFile`, `ConnectTimeout`). That is how an operator already
maps Nova's hypervisor hostnames to the addresses, users and keys that reach them, so `--via hypervisor`
needs no second mapping. Host keys must be known (`~/.ssh/known_hosts` or the configured
`UserKnownHostsFile`): we read whole VM disks, and an unknown host is refused, never trusted on first use.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import socket
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from stackwatch.fleece.blockio import BlockReader
from stackwatch.fleece.errors import SourceError

SSH_CONFIG_ENV = "STACKWATCH_SSH_CONFIG"


class SFTPReader(BlockReader):
    """One remote file over an open paramiko SFTPClient; `sibling` opens a backing file on the same host.

    Siblings share the first reader's SSH connection; closing the reader that opened it (`ssh`) closes it.
    """

    def __init__(self, client, path: str, label: str, ssh=None, **kw) -> None:
        self.name = label
        self._client, self.path, self._ssh = client, path, ssh
        self.identity = "sftp:" + posixpath.normpath(path)  # one connection, one host: the path says which file
        try:
            self._f = client.open(path, "rb")
            st = self._f.stat()
            size, self.mode = st.st_size, st.st_mode  # None if the server does not say
        except OSError as e:
            if ssh is not None:
                ssh.close()
            why = e.strerror or str(e) or type(e).__name__
            raise SourceError(f"{label}: cannot open {path} over SFTP: {why}") from e
        super().__init__(size, **kw)

    def _fetch(self, offset: int, length: int) -> bytes:
        try:
            self._f.seek(offset)
            chunks, want = [], length
            while want > 0:
                data = self._f.read(want)  # paramiko splits it into 32 KiB SFTP reads
                if not data:
                    break
                chunks.append(data)
                want -= len(data)
        except (OSError, EOFError) as e:  # a channel timeout is socket.timeout, an OSError
            why = str(e) or type(e).__name__
            raise SourceError(f"{self.name}: SFTP read of {length} bytes at {offset} failed: {why}") from e
        return b"".join(chunks)

    def sibling(self, path: str) -> SFTPReader:
        """Another file on this connection (a backing file at the absolute `path` backing.py resolved and allowed)."""
        u = urlsplit(self.name)
        label = urlunsplit((u.scheme, u.netloc, quote(path), "", "")) if u.scheme else path
        return SFTPReader(self._client, path, label)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(OSError, EOFError):  # the connection may be gone; nothing to flush
                self._f.close()
            if self._ssh is not None:
                self._ssh.close()
        super().close()


@dataclass(frozen=True)
class SSHTarget:
    """Where and as whom to connect, after the URL and the ssh client configuration are combined."""

    hostname: str
    port: int
    username: str | None
    key_files: list[str]
    known_hosts: list[str]
    identities_only: bool
    timeout: float


def ssh_config_path(explicit: str | None = None) -> str | None:
    """The OpenSSH client config to read: the given one, $STACKWATCH_SSH_CONFIG, else ~/.ssh/config if present."""
    path = explicit or os.environ.get(SSH_CONFIG_ENV)
    if path:
        if not os.path.isfile(path):
            raise SourceError(f"ssh client config {path} does not exist")
        return path
    default = os.path.expanduser("~/.ssh/config")
    return default if os.path.isfile(default) else None


def resolve(
    url: str, key_filename: str | None = None, ssh_config: str | None = None, timeout: float = 30.0
) -> tuple[SSHTarget, str]:
    """(SSHTarget, remote path) for sftp://[user@]host[:port]/path; the URL's user and port win over the config."""
    import paramiko

    u = urlsplit(url)
    if u.scheme != "sftp" or not u.hostname or not u.path:
        raise SourceError(f"{url}: expected sftp://[user@]host[:port]/path")
    conf: dict = {}
    path = ssh_config_path(ssh_config)
    if path:
        try:
            conf = paramiko.SSHConfig.from_path(path).lookup(u.hostname)
        except (OSError, paramiko.ssh_exception.ConfigParseError) as e:
            raise SourceError(f"ssh client config {path}: {e}") from e
    keys = [key_filename] if key_filename else [os.path.expanduser(k) for k in conf.get("identityfile", [])]
    known = [os.path.expanduser(k) for k in conf.get("userknownhostsfile", "").split()]
    try:
        port = u.port or int(conf.get("port", 22))
        timeout = float(conf.get("connecttimeout", timeout))
    except ValueError as e:  # also a port out of range in the URL
        raise SourceError(f"{url}: bad port or ConnectTimeout ({e}) in the URL or ssh client config {path}") from e
    target = SSHTarget(
        hostname=conf.get("hostname", u.hostname),
        port=port,
        username=unquote(u.username) if u.username else conf.get("user"),
        key_files=keys,
        known_hosts=known,
        identities_only=conf.get("identitiesonly", "no").lower() == "yes",
        timeout=timeout,
    )
    return target, unquote(u.path)


def open_sftp(
    url: str, key_filename: str | None = None, timeout: float = 30.0, ssh_config: str | None = None
) -> SFTPReader:
    """sftp://[user@]host[:port]/path with keys from the agent, ~/.ssh, the ssh config or `key_filename`.

    No passwords (nothing to put on a command line). Every network step has `timeout`: a host that
    accepts the TCP connection and then says nothing, or stalls mid-read, is an error, never a hang.
    """
    import paramiko

    t, path = resolve(url, key_filename, ssh_config, timeout)
    where = f"{t.username + '@' if t.username else ''}{t.hostname}:{t.port}"
    ssh = paramiko.SSHClient()
    ssh.load_system_host_keys()
    for kh in t.known_hosts:
        if os.path.isfile(kh):
            ssh.load_host_keys(kh)  # also where paramiko would save; we never save (RejectPolicy)
    ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        ssh.connect(
            t.hostname,
            port=t.port,
            username=t.username,
            key_filename=t.key_files or None,
            allow_agent=not t.identities_only,
            look_for_keys=not t.identities_only,
            timeout=t.timeout,
            banner_timeout=t.timeout,
            auth_timeout=t.timeout,
            channel_timeout=t.timeout,
        )
        client = ssh.open_sftp()
        client.get_channel().settimeout(t.timeout)  # every SFTP reply, so a stalled read fails too
    except paramiko.BadHostKeyException as e:
        ssh.close()
        raise SourceError(f"{url}: host key of {where} does not match known_hosts ({e})") from e
    except paramiko.AuthenticationException as e:
        ssh.close()
        raise SourceError(
            f"{url}: SSH login to {where} refused ({e}); keys are taken from the agent, ~/.ssh, "
            f"IdentityFile in the ssh config or --ssh-key"
        ) from e
    except paramiko.SSHException as e:
        # paramiko's own message can be the symptom ("No existing session": its negotiation wait ran out);
        # the transport thread keeps the cause
        cause = getattr(ssh.get_transport(), "saved_exception", None) or e
        ssh.close()
        text = str(cause) or type(cause).__name__
        if "not found in known_hosts" in text:
            raise SourceError(
                f"{url}: host key of {where} is unknown; add it to ~/.ssh/known_hosts "
                "(or the UserKnownHostsFile of the ssh config)"
            ) from e
        if "banner" in text or "No existing session" in text:  # TCP connected, no SSH greeting in time
            raise SourceError(
                f"{url}: SSH connection to {where} failed: no SSH server answered within {t.timeout:g} s"
            ) from e
        raise SourceError(f"{url}: SSH connection to {where} failed: {text}") from e
    except (OSError, EOFError) as e:
        ssh.close()
        why = "timed out" if isinstance(e, socket.timeout) else (e.strerror or str(e) or type(e).__name__)
        raise SourceError(f"{url}: SSH connection to {where} failed: {why}") from e
    return SFTPReader(client, path, url, ssh=ssh)
