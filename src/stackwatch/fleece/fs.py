"""Filesystems (ext2/3/4 via libfsext, XFS via libfsxfs) and a guest root assembled from their mounts.

libyal returns a symlink as an entry with a target and never follows it, so `Root.resolve` walks paths
itself: across mount points, `..` included, at most 40 links (Linux's ELOOP limit). `Root.walk` refuses
to enter a directory inode twice, so a hard-linked directory loop ends with an error, not a hang.
"""

from __future__ import annotations

import posixpath
import stat
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from stackwatch.fleece.errors import CorruptImage, FleeceError, LimitExceeded, reraise_memory

MAX_LINKS = 40
MAX_FILE = 256 << 20
EXT_MAGIC = b"\x53\xef"


def detect(reader) -> str | None:
    if getattr(reader, "size", 0) < 4096:
        return None
    if reader.pread(0, 4) == b"XFSB":
        return "xfs"
    sb = reader.pread(1024, 128)
    if sb[56:58] == EXT_MAGIC:
        compat, incompat, ro = (int.from_bytes(sb[o : o + 4], "little") for o in (92, 96, 100))
        if incompat & 0x40 or incompat & 0x80 or ro & 0x8 or ro & 0x40:  # extents, 64bit, huge_file, extra_isize
            return "ext4"
        return "ext3" if compat & 0x4 else "ext2"  # has_journal
    return None


class FileSystem:
    """One opened filesystem: typed entries by path, no symlink handling (Root does that)."""

    def __init__(self, reader, fstype: str, device: str) -> None:
        self.fstype, self.device = fstype, device
        if fstype == "xfs":
            import pyfsxfs as lib
        else:
            import pyfsext as lib
        self._vol = lib.volume()
        try:
            self._vol.open_file_object(reader)
        except OSError as e:
            reraise_memory(e)
            raise CorruptImage(f"{device}: cannot open {fstype} filesystem: {e}") from e
        self.label = self._vol.label or ""

    def entry(self, path: str):
        """The entry at an already resolved path, or None."""
        try:
            return self._vol.get_file_entry_by_path(path or "/")
        except OSError as e:
            reraise_memory(e)
            raise CorruptImage(f"{self.device}: cannot look up {path}: {e}") from e


def _mode(entry) -> int:
    return entry.file_mode or 0


@dataclass
class Mount:
    point: str
    fs: FileSystem


class Root:
    """The guest's directory tree: a root filesystem plus the others mounted where fstab says."""

    def __init__(self, root: FileSystem) -> None:
        self.mounts = [Mount("/", root)]

    def mount(self, point: str, fs: FileSystem) -> None:
        self.mounts.append(Mount(posixpath.normpath(point), fs))
        self.mounts.sort(key=lambda m: len(m.point), reverse=True)

    def _locate(self, parts: list[str]):
        path = "/" + "/".join(parts)
        for m in self.mounts:
            if path == m.point or path.startswith(m.point.rstrip("/") + "/"):
                rel = path[len(m.point.rstrip("/")) :] or "/"
                return m.fs, m.fs.entry(rel)
        raise AssertionError("no root mount")  # "/" always matches

    def resolve(self, path: str, follow_last: bool = True) -> tuple[str, object]:
        """(canonical path, entry) following symlinks; FileNotFoundError or LimitExceeded on a loop."""
        todo = deque(p for p in path.split("/") if p)
        done: list[str] = []
        hops = 0
        entry = self._locate([])[1]
        while todo:
            name = todo.popleft()
            if name == ".":
                continue
            if name == "..":
                if done:
                    done.pop()
                entry = self._locate(done)[1]
                continue
            _fs, cand = self._locate(done + [name])
            if cand is None:
                raise FileNotFoundError("/" + "/".join(done + [name]))
            if stat.S_ISLNK(_mode(cand)) and (todo or follow_last):
                hops += 1
                if hops > MAX_LINKS:
                    raise LimitExceeded(f"symlink loop: more than {MAX_LINKS} links resolving {path}")
                target = cand.symbolic_link_target or ""
                if target.startswith("/"):
                    done = []
                todo.extendleft(reversed([p for p in target.split("/") if p]))
                continue
            done.append(name)
            entry = cand
        return "/" + "/".join(done), entry

    def read(self, path: str, limit: int = MAX_FILE) -> bytes:
        real, entry = self.resolve(path)
        if not stat.S_ISREG(_mode(entry)):
            raise IsADirectoryError(real)
        if entry.size > limit:
            raise LimitExceeded(f"{real} is {entry.size} bytes, over the {limit} byte limit")
        return entry.read_buffer_at_offset(entry.size, 0) if entry.size else b""

    def read_text(self, path: str, limit: int = MAX_FILE) -> str | None:
        """File text, or None when it does not exist."""
        try:
            return self.read(path, limit).decode("utf-8", "replace")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def listdir(self, path: str) -> list[tuple[str, int, object]]:
        """(name, mode, entry) of a directory's children, symlinks not followed; [] if it is missing."""
        try:
            _real, entry = self.resolve(path)
        except FileNotFoundError:
            return []
        if not stat.S_ISDIR(_mode(entry)):
            return []
        out = []
        for child in entry.sub_file_entries:
            out.append((child.name, _mode(child), child))
        return out

    def readlink(self, entry) -> str:
        return entry.symbolic_link_target or ""

    def walk(self, top: str, max_depth: int = 8, max_entries: int = 100_000) -> Iterator[tuple[str, str, int, object]]:
        """(dir, name, mode, entry) below top; CorruptImage if a directory is reached twice (a loop)."""
        try:
            real, entry = self.resolve(top)
        except FileNotFoundError:
            return
        seen = {entry.inode_number: real}
        stack = [(real, entry, 0)]
        count = 0
        while stack:
            d, dentry, depth = stack.pop()
            for child in dentry.sub_file_entries:
                count += 1
                if count > max_entries:
                    raise LimitExceeded(f"more than {max_entries} entries below {top}")
                mode = _mode(child)
                path = posixpath.join(d, child.name)
                yield d, child.name, mode, child
                if stat.S_ISDIR(mode):
                    ino = child.inode_number
                    if ino in seen:
                        raise CorruptImage(f"directory loop: {path} is inode {ino}, already seen at {seen[ino]}")
                    seen[ino] = path
                    if depth + 1 < max_depth:
                        stack.append((path, child, depth + 1))


def open_fs(reader, device: str) -> FileSystem | None:
    """The filesystem on a volume, or None when there is none we read."""
    fstype = detect(reader)
    if fstype is None:
        return None
    try:
        return FileSystem(reader, fstype, device)
    except FleeceError:
        raise
    except Exception as e:  # noqa: BLE001 - libyal raises plain IOError/ValueError variants
        reraise_memory(e)
        raise CorruptImage(f"{device}: {fstype}: {e}") from e
