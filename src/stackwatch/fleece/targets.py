"""Target strings -> a source reader and an opener for backing files next to it.

  /path/disk.qcow2            local file
  http(s)://host/disk.img     HTTP Range
  glance:IMAGE_ID             Glance image data (GET /v2/images/{id}/file), through the provider's cloud session
  swift:CONTAINER/OBJECT      a Swift object, same session
  sftp://[user@]host[:port]/path  SFTP offset reads (ssh client config: sftp.py)
`instance:UUID` is resolved before this (runner.py) to glance: or sftp: targets. A backing file named in
a qcow2 header is opened only inside the source the image came from (backing.py says where).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from stat import S_ISREG

from stackwatch.fleece import backing
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
    backing_dirs: tuple[str, ...] = ()  # more directories backing files may be read from (local and sftp://;
    # --allow-backing-dir): by default only the image's own directory (backing.py)


# open_backing(name, image): the reader of backing file `name` named in the header of `image`
Opener = Callable[[str, BlockReader], BlockReader]


@dataclass
class Source:
    reader: BlockReader
    open_backing: Opener | None
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


def _track(src: Source, opener: Opener) -> Opener:
    def open_tracked(name: str, image: BlockReader) -> BlockReader:
        r = opener(name, image)
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
        return _sftp(target, opts)
    if target.startswith(("instance:", "file:")) or ":" in target.split("/")[0] and not os.path.exists(target):
        raise SourceError(f"{target}: unknown target kind (use a path, http(s)://, glance:, swift:, sftp://)")
    return _local(target, opts)


def _local(path: str, opts: SourceOptions) -> Source:
    reader = LocalReader(path)
    src = Source(reader, None, [reader])
    roots = backing.local_roots(path, opts.backing_dirs)

    def sibling(name: str, image: BlockReader) -> BlockReader:
        real = backing.local_path(image.name, name, roots, image.name)
        r = LocalReader(real, follow=False)  # what local_path checked is what is opened
        if not S_ISREG(r.mode):
            r.close()
            backing.check_regular(image.name, name, real, r.mode)
        return r

    src.open_backing = _track(src, sibling)
    return src


def _sftp(url: str, opts: SourceOptions) -> Source:
    from stackwatch.fleece.openstack import instances_dir
    from stackwatch.fleece.sftp import open_sftp

    reader = open_sftp(url, key_filename=opts.ssh_key, ssh_config=opts.ssh_config)
    src = Source(reader, None, [reader])
    roots = backing.sftp_roots(reader.path, instances_dir(opts.instances_path), opts.backing_dirs)

    def sibling(name: str, image: BlockReader) -> BlockReader:
        path = backing.sftp_path(image.path, name, roots, image.name)  # type: ignore[attr-defined]
        r = reader.sibling(path)
        if r.mode is not None and not S_ISREG(r.mode):  # the path rule holds either way
            r.close()
            backing.check_regular(image.name, name, path, r.mode)
        return r

    src.open_backing = _track(src, sibling)
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
    if not isinstance(reader, HTTPRangeReader):  # downloaded: still the URL's file, for names and loops
        reader.url = reader.identity = url  # type: ignore[attr-defined]
    src = Source(reader, None, [reader])

    def sibling(name: str, image: BlockReader) -> BlockReader:
        return HTTPRangeReader(backing.http_url(image.url, name, image.name), session=session)  # type: ignore[attr-defined]

    src.open_backing = _track(src, sibling)
    return src
