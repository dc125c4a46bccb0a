"""SFTP offset reads (paramiko): a hypervisor's /var/lib/nova/instances/<uuid>/disk and its _base file."""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

from stackwatch.fleece.blockio import BlockReader
from stackwatch.fleece.errors import SourceError


class SFTPReader(BlockReader):
    """One remote file over an open paramiko SFTPClient; `sibling` opens a backing file on the same host."""

    def __init__(self, client, path: str, label: str, **kw) -> None:
        self.name = label
        self._client, self.path = client, path
        try:
            self._f = client.open(path, "rb")
            size = self._f.stat().st_size
        except OSError as e:
            raise SourceError(f"{label}: {e}") from e
        super().__init__(size, **kw)

    def _fetch(self, offset: int, length: int) -> bytes:
        self._f.seek(offset)
        chunks, want = [], length
        while want > 0:
            data = self._f.read(want)
            if not data:
                break
            chunks.append(data)
            want -= len(data)
        return b"".join(chunks)

    def sibling(self, name: str) -> SFTPReader:
        path = name if name.startswith("/") else posixpath.join(posixpath.dirname(self.path), name)
        return SFTPReader(self._client, path, self.name.rsplit("/", 1)[0] + "/" + posixpath.basename(path))


def open_sftp(url: str, key_filename: str | None = None, timeout: float = 30.0) -> SFTPReader:
    """sftp://[user@]host[:port]/path with the agent's or ~/.ssh keys (no passwords on the command line)."""
    import paramiko

    u = urlsplit(url)
    ssh = paramiko.SSHClient()
    ssh.load_system_host_keys()
    ssh.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        ssh.connect(
            u.hostname or "",
            port=u.port or 22,
            username=u.username,
            key_filename=key_filename,
            timeout=timeout,
        )
        client = ssh.open_sftp()
    except (OSError, paramiko.SSHException) as e:
        raise SourceError(f"{url}: SSH connection failed: {e}") from e
    reader = SFTPReader(client, u.path, url)
    reader._ssh = ssh  # type: ignore[attr-defined]  # closes with the reader's lifetime
    return reader
