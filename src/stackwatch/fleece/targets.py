"""Target strings -> a source reader and an opener for backing files next to it.

  /path/disk.qcow2            local file
  http(s)://host/disk.img     HTTP Range
  glance:IMAGE_ID             Glance image data (GET /v2/images/{id}/file), through the provider's cloud session
  swift:CONTAINER/OBJECT      a Swift object, same session
  sftp://[user@]host[:port]/path  SFTP offset reads (ssh client config: sftp.py)
`instance:UUID` is resolved before this (runner.py) to glance: or sftp: targets.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin

from stackwatch.fleece.blockio import BlockReader, LocalReader
from stackwatch.fleece.errors import SourceError


@dataclass(frozen=True)
class SourceOptions:
    cloud: str | None = None  # clouds.yaml cloud name (the CLI resolves --provider to it); None: OS_* env
    download: bool = False  # fetch whole images when ranges are refused
    ssh_key: str | None = None  # private key for sftp:// (else the agent, ~/.ssh, IdentityFile of the config)
    ssh_config: str | None = None  # OpenSSH client config; None: $STACKWATCH_SSH_CONFIG, else ~/.ssh/config
    instances_path: str | None = None  # nova.conf instances_path on the hypervisors (--via hypervisor); None:
    # $STACKWATCH_NOVA_INSTANCES_PATH, else Nova's default /var/lib/nova/instances


@dataclass
class Source:
    reader: BlockReader
    open_backing: Callable[[str], BlockReader] | None
    opened: list[BlockReader] = field(default_factory=list)  # every reader, for the io counters

    def io(self) -> dict:
        out = self.reader.stats.as_dict()
        for r in self.opened:
            if r is not self.reader:
                out["bytes_read"] += r.stats.bytes_read
                out["requests"] += r.stats.requests
                out["cache_hits"] += r.stats.cache_hits
        return out

    def close(self) -> None:
        for r in self.opened:
            r.close()


def _track(src: Source, opener: Callable[[str], BlockReader]) -> Callable[[str], BlockReader]:
    def open_tracked(name: str) -> BlockReader:
        r = opener(name)
        src.opened.append(r)
        return r

    return open_tracked


def open_source(target: str, opts: SourceOptions = SourceOptions()) -> Source:
    if target.startswith(("http://", "https://")):
        return _http(target, None, opts)
    if target.startswith(("glance:", "swift:")):
        from stackwatch.fleece import openstack

        conn = openstack.connect(opts.cloud)
        kind, _, rest = target.partition(":")
        if kind == "glance":
            url = openstack.glance_url(conn, rest)
        else:
            container, _, obj = rest.partition("/")
            if not obj:
                raise SourceError(f"{target}: expected swift:CONTAINER/OBJECT")
            url = openstack.swift_url(conn, container, obj)
        return _http(url, openstack.SessionAdapter(conn.session), opts, label=target)
    if target.startswith("sftp://"):
        from stackwatch.fleece.sftp import open_sftp

        reader = open_sftp(target, key_filename=opts.ssh_key, ssh_config=opts.ssh_config)
        src = Source(reader, None, [reader])
        src.open_backing = _track(src, reader.sibling)
        return src
    if target.startswith(("instance:", "file:")) or ":" in target.split("/")[0] and not os.path.exists(target):
        raise SourceError(f"{target}: unknown target kind (use a path, http(s)://, glance:, swift:, sftp://)")
    reader = LocalReader(target)
    src = Source(reader, None, [reader])
    base = os.path.dirname(os.path.abspath(target))
    src.open_backing = _track(src, lambda name: LocalReader(name if os.path.isabs(name) else os.path.join(base, name)))
    return src


def _http(url: str, session, opts: SourceOptions, label: str | None = None) -> Source:
    from stackwatch.fleece.errors import RangeNotSupported
    from stackwatch.fleece.http import HTTPRangeReader, download

    try:
        reader: BlockReader = HTTPRangeReader(url, session=session)
    except RangeNotSupported:
        if not opts.download:
            raise
        reader = download(url, session=session)
    if label:
        reader.name = label
    src = Source(reader, None, [reader])

    def sibling(name: str) -> BlockReader:
        if name.startswith("/"):
            raise SourceError(f"{label or url}: backing file {name} is a host path; fleece it over sftp://")
        return HTTPRangeReader(urljoin(url, posixpath.basename(name) if "/" not in name else name), session=session)

    src.open_backing = _track(src, sibling)
    return src
