"""Where a backing file named in a qcow2 header may be read from: only inside the source the image came from.

The backing file name is text in the image, and the image is a tenant's (uploaded to Glance, or the disk
of a tenant's instance). Followed as written, `https://host.example/x` or `//host.example/x` would send the
operator's Keystone token to that host (the authenticated session adds it to every request), and
`/dev/sda` or `../../etc/...` would read the fleecing host's own disks and files into the report. So a
name is resolved only inside its source, one rule per kind of source, and anything else raises
BackingFileRefused naming the image, the name and the rule:

- HTTP (`http(s)://`, `glance:`, `swift:`): a relative path, read beside the image, in the image URL's
  directory on the image's own origin (scheme, host and port). No URL of its own, no `//host`, no absolute
  path, no `..` out of that directory. The path is percent-encoded, so the server sees the name as one
  path and nothing else (no query, no encoded `..`).
- SFTP (a hypervisor): relative names beside the image that names them, absolute ones as written (Nova
  writes `<instances_path>/_base/<hash>`); normalised, the path must lie in the first image's directory,
  in Nova's image cache `<instances_path>/_base` when that image is an instance disk under
  `instances_path`, or in a directory the operator allowed. The directories are Nova's, so names are
  checked as written; the file must be a regular file.
- local files: the image's directory and the directories the operator allowed, checked on the real path
  (symlinks resolved), and only regular files (never a device, FIFO or socket).

Directories are allowed with `--allow-backing-dir DIR` (SourceOptions.backing_dirs).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Iterable
from urllib.parse import quote, urlsplit, urlunsplit

from stackwatch.fleece.errors import BackingFileRefused

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_DEFAULT_PORTS = {"http": 80, "https": 443}
ALLOW_HINT = "allow a directory with --allow-backing-dir DIR"


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in: what 'the same server' means."""
    u = urlsplit(url)
    scheme = u.scheme.lower()
    return scheme, (u.hostname or "").lower(), u.port or _DEFAULT_PORTS.get(scheme)


def origin_text(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}"


def _check_text(image: str, name: str) -> None:
    if not name:
        raise BackingFileRefused(image, name, "the name is empty")
    if any(ord(c) < 0x20 or c == "\x7f" for c in name):
        raise BackingFileRefused(image, name, "the name holds control characters")


def _check_path(image: str, name: str, where: str) -> None:
    """A name for a file source: a path, not a URL (qemu too reads `scheme:` before any '/' as a protocol)."""
    _check_text(image, name)
    m = _SCHEME.match(name)
    if m:
        raise BackingFileRefused(
            image, name, f"a URL ({m.group(0)}), and the image is {where}: only a path is followed"
        )


def http_url(image_url: str, name: str, image: str) -> str:
    """The URL of backing file `name` of the image at `image_url` (`image` labels it in messages)."""
    _check_text(image, name)
    where = f"backing files are read only beside the image on its own origin {origin_text(image_url)}"
    if name.startswith("//"):
        raise BackingFileRefused(image, name, f"a scheme-relative URL names another host; {where}")
    if _SCHEME.match(name):
        raise BackingFileRefused(image, name, f"a URL of its own ({name.split(':', 1)[0]}:); {where}")
    if name.startswith("/"):
        raise BackingFileRefused(image, name, f"an absolute path (a host path needs sftp://); {where}")
    if "\\" in name:
        raise BackingFileRefused(image, name, f"a backslash, which servers read as a path separator; {where}")
    rel = posixpath.normpath(name)
    if rel in (".", "..") or rel.startswith("../"):
        raise BackingFileRefused(image, name, f"'..' leaves the image's directory; {where}")
    u = urlsplit(image_url)
    directory = u.path.rsplit("/", 1)[0] + "/"
    url = urlunsplit((u.scheme, u.netloc, directory + quote(rel, safe="/"), "", ""))
    if origin(url) != origin(image_url):  # cannot happen after the checks above; kept as the last word
        raise BackingFileRefused(image, name, f"resolves to another origin {origin_text(url)}; {where}")
    return url


def _within(path: str, roots: Iterable[str]) -> bool:
    for root in roots:
        root = root.rstrip("/")
        if path == root or path.startswith(root + "/"):  # root "/" became "": everything
            return True
    return False


def _normal(path: str) -> str:
    """posixpath.normpath, also of a leading '//' (which POSIX lets an implementation keep)."""
    return "/" + posixpath.normpath(path).lstrip("/")


def sftp_roots(top_path: str, instances_path: str, allowed: Iterable[str] = ()) -> tuple[str, ...]:
    """The first image's directory; Nova's `_base` if the image is an instance disk under `instances_path`."""
    top = _normal(top_path)
    roots = [posixpath.dirname(top)]
    instances = _normal(instances_path)
    if top.startswith(instances.rstrip("/") + "/"):
        roots.append(instances.rstrip("/") + "/_base")
    roots += [_normal(d) for d in allowed]
    return tuple(roots)


def sftp_path(image_path: str, name: str, roots: Iterable[str], image: str) -> str:
    """The remote path of backing file `name` of the image at `image_path`."""
    _check_path(image, name, "on an SFTP host")
    path = _normal(name if name.startswith("/") else posixpath.join(posixpath.dirname(image_path), name))
    roots = tuple(roots)
    if not _within(path, roots):
        raise BackingFileRefused(
            image, name, f"resolves to {path}, outside {', '.join(roots)} on that host; {ALLOW_HINT}"
        )
    return path


def local_roots(top_path: str, allowed: Iterable[str] = ()) -> tuple[str, ...]:
    """Real paths of the image's directory and the allowed ones."""
    return tuple(os.path.realpath(d) for d in (os.path.dirname(os.path.abspath(top_path)), *allowed))


def local_path(image_path: str, name: str, roots: Iterable[str], image: str) -> str:
    """The real path of backing file `name` of the local image at `image_path`; a regular file in `roots`."""
    _check_path(image, name, "a local file")
    path = _normal(name if os.path.isabs(name) else os.path.join(os.path.dirname(os.path.abspath(image_path)), name))
    real = os.path.realpath(path)
    roots = tuple(roots)
    if not _within(real, roots):
        via = f" through a symlink ({path} -> {real})" if real != path else ""
        raise BackingFileRefused(image, name, f"resolves{via} to {real}, outside {', '.join(roots)}; {ALLOW_HINT}")
    check_regular(image, name, real)
    return real


def check_regular(image: str, name: str, path: str, mode: int | None = None) -> None:
    """Refuse anything but a regular file: a device or FIFO is no image, and reading one can block or harm."""
    if mode is None:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return  # missing: the reader's open says so, with the path
    if not stat.S_ISREG(mode):
        raise BackingFileRefused(image, name, f"{path} is not a regular file (a device, FIFO, socket or directory)")
