"""Ranged, counted, cached reads: the one file-object interface every layer above reads through.

Remote images are read with one byte range per request, so the cost of a fleece is the number of
requests and bytes. Without a cache a qcow2 reader re-reads the same L2 tables and clusters over and
over; the LRU block cache keeps that away. Small blocks (16 KiB) keep bytes low, because filesystem
metadata reads are scattered 4 KiB reads; two rules keep the request count low anyway: the read-ahead
window doubles on back-to-back misses (sequential file data; a miss within GAP blocks after the last
fetch counts), and a miss within GAP blocks of a cached block also fetches the gap (inode tables and
directories are read in clusters with holes, where the next miss would land). `pread_span` is the
exception for data whose exact extent the caller knows and caches decoded itself (compressed qcow2
clusters): exactly the missing bytes, no rounding, no read-ahead. Subclasses implement
`_fetch(offset, length)` and nothing else.
"""

from __future__ import annotations

import collections
import io
import os
import threading
import time
from dataclasses import dataclass, field

from stackwatch.fleece.errors import SourceError, reraise_memory

# Measured in-process on the builder's 13 images plus the 3 GiB reference image (bench/fleece.md):
# 64 KiB blocks, no gap fill: 25.5 MiB in all, at most 32 requests per image (the reference: 2496 KiB);
# 16 KiB, no gap fill: 13.7 MiB but up to 47 requests; 16 KiB, 4-block gap fill, doubling also on
# near-sequential misses: 17.7 MiB, at most 36 requests (+1 size probe over HTTP; the reference: 1472 KiB).
BLOCK = 16 * 1024
CACHE_BLOCKS = 4096  # 64 MiB
READAHEAD_MAX = 64  # blocks: 1 MiB
GAP = 4  # blocks: a miss this close to a cached block also fetches the gap between them


@dataclass
class IOStats:
    """What a reader cost: `bytes_read`/`requests` went to the source, `cache_hits` did not."""

    image_size: int = 0
    bytes_read: int = 0
    requests: int = 0
    cache_hits: int = 0
    started: float = field(default_factory=time.monotonic)

    def as_dict(self) -> dict:
        return {
            "image_size": self.image_size,
            "bytes_read": self.bytes_read,
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "seconds": round(time.monotonic() - self.started, 4),
        }


class BlockReader(io.RawIOBase):
    """Seekable read-only file object over `_fetch`, with an LRU block cache and read-ahead."""

    name = "<blockio>"
    identity: str | None = None  # what makes two readers the same file (a backing chain loop); None: name

    def __init__(
        self,
        size: int,
        *,
        block: int = BLOCK,
        cache_blocks: int = CACHE_BLOCKS,
        readahead_max: int = READAHEAD_MAX,
        gap: int = GAP,
    ) -> None:
        super().__init__()
        self.size = size
        self.block = block
        self.stats = IOStats(image_size=size)
        self._pos = 0
        self._cache: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self._cache_blocks = cache_blocks
        self._readahead_max = readahead_max
        self._gap = gap  # blocks: a gap this small to a cached block is fetched with the miss
        self._window = 1
        self._next_seq = -1  # block index that would continue the last fetch
        self._last_len = 0  # blocks in the last fetch
        self._lock = threading.RLock()

    # -- subclass hook
    def _fetch(self, offset: int, length: int) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- io.RawIOBase
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    # libyal's file-object protocol asks for these names as well
    def get_offset(self) -> int:
        return self._pos

    def get_size(self) -> int:
        return self.size

    def read(self, n: int | None = -1) -> bytes:
        with self._lock:
            data = self.pread(self._pos, self.size - self._pos if n is None or n < 0 else n)
            self._pos += len(data)
            return data

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    # -- the cache
    def pread(self, offset: int, n: int) -> bytes:
        """Read n bytes at offset (short only at end of image) without moving the position."""
        n = max(0, min(n, self.size - offset))
        if n == 0:
            return b""
        with self._lock:
            first, last = offset // self.block, (offset + n - 1) // self.block
            got: dict[int, bytes] = {}  # this call's blocks: a long fill may evict them from the LRU
            idx = first
            while idx <= last:
                blk = self._cache.get(idx)
                if blk is not None:
                    self._cache.move_to_end(idx)
                    self.stats.cache_hits += 1
                    got[idx] = blk
                    idx += 1
                    continue
                run_end = idx
                while run_end + 1 <= last and run_end + 1 not in self._cache:
                    run_end += 1
                got.update(self._fill(idx, run_end))
                idx = run_end + 1
            parts = []
            for i in range(first, last + 1):
                blk = got[i]
                lo = max(offset, i * self.block) - i * self.block
                hi = min(offset + n, (i + 1) * self.block) - i * self.block
                parts.append(blk[lo:hi])
            return b"".join(parts)

    def pread_span(self, offset: int, n: int) -> bytes:
        """Read exactly bytes [offset, offset+n): what is cached comes from the cache, the rest in one request
        of exactly the missing span, with no read-ahead and no gap fill.

        For data whose extent the caller knows and caches decoded itself (a compressed qcow2 cluster or
        vmdk grain: its byte span comes from the L2 / grain table entry). Rounding such spans out to blocks,
        and letting their misses grow the read-ahead window, fetched about three times the compressed
        bytes. Blocks the span covers whole go into the block cache (a table read may share them).
        """
        n = max(0, min(n, self.size - offset))
        if n == 0:
            return b""
        with self._lock:
            lo, hi = offset, offset + n
            head = b""
            while lo < hi and lo // self.block in self._cache:  # cached blocks at the front
                take = min(hi, (lo // self.block + 1) * self.block) - lo
                head += self.pread(lo, take)
                lo += take
            tail = b""
            while hi > lo and (hi - 1) // self.block in self._cache:  # and at the back
                start = max(lo, (hi - 1) // self.block * self.block)
                tail = self.pread(start, hi - start) + tail
                hi = start
            if lo == hi:
                return head + tail
            data = self._fetch(lo, hi - lo)
            self.stats.requests += 1
            self.stats.bytes_read += len(data)
            if len(data) != hi - lo:
                raise SourceError(f"{self.name}: short read at {lo}: got {len(data)} of {hi - lo} bytes")
            for i in range(-(-lo // self.block), hi // self.block):  # whole blocks inside the span
                if i not in self._cache:
                    self._cache[i] = data[i * self.block - lo : (i + 1) * self.block - lo]
            while len(self._cache) > self._cache_blocks:
                self._cache.popitem(last=False)
            self._last_len = 0  # a span is no sequential run: the next block miss starts a new window
            return head + data + tail

    def _fill(self, first: int, last: int) -> dict[int, bytes]:
        """Fetch blocks first..last in one request, plus read-ahead and gap fill; the blocks fetched."""
        if self._last_len and 0 <= first - self._next_seq <= self._gap:  # (nearly) continues the last fetch
            self._window = min(max(self._window, self._last_len) * 2, self._readahead_max)
        else:
            self._window = 1
        nblocks_total = -(-self.size // self.block)
        end = min(max(last, first + self._window - 1), nblocks_total - 1)
        while end > last and end in self._cache:  # never re-fetch what read-ahead would overlap
            end -= 1
        # fill a small gap to a cached neighbour on either side: the next miss would land in it
        for k in range(1, min(self._gap, first) + 1):
            if first - k in self._cache:
                first = first - k + 1
                break
        for k in range(1, min(self._gap, nblocks_total - 1 - end) + 1):
            if end + k in self._cache:
                end = end + k - 1
                break
        start_off = first * self.block
        length = min((end + 1) * self.block, self.size) - start_off
        data = self._fetch(start_off, length)
        self.stats.requests += 1
        self.stats.bytes_read += len(data)
        if len(data) != length:
            raise SourceError(f"{self.name}: short read at {start_off}: got {len(data)} of {length} bytes")
        fetched = {i: data[(i - first) * self.block : (i - first + 1) * self.block] for i in range(first, end + 1)}
        for i, blk in fetched.items():
            self._cache[i] = blk
            self._cache.move_to_end(i)
        while len(self._cache) > self._cache_blocks:
            self._cache.popitem(last=False)
        self._next_seq = end + 1
        self._last_len = end - first + 1
        return fetched


class LocalReader(BlockReader):
    """A local file read with pread; counted like a remote source so benchmarks compare."""

    def __init__(self, path: str | os.PathLike, follow: bool = True, **kw) -> None:
        """`follow=False` (backing files): a symlink is not followed and a FIFO does not block the open."""
        self.name = str(path)
        flags = os.O_RDONLY | (0 if follow else os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            self._fd = os.open(path, flags)
        except OSError as e:
            raise SourceError(f"cannot open {path}: {e.strerror}") from e
        st = os.fstat(self._fd)
        self.mode = st.st_mode
        self.identity = f"file:{st.st_dev}:{st.st_ino}"  # one file under any name (a symlink, a hard link)
        super().__init__(st.st_size, **kw)

    def _fetch(self, offset: int, length: int) -> bytes:
        return os.pread(self._fd, length, offset)

    def close(self) -> None:
        if not self.closed and self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        super().close()


class SliceReader(io.RawIOBase):
    """A window [offset, offset+size) of another reader: a partition or an LV's linear extent."""

    def __init__(self, base: BlockReader | SliceReader, offset: int, size: int, name: str = "") -> None:
        super().__init__()
        self.base, self.offset, self.size, self.name = base, offset, size, name
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    get_offset = tell

    def get_size(self) -> int:
        return self.size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def pread(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.size - offset))
        return self.base.pread(self.offset + offset, n) if n else b""

    def read(self, n: int | None = -1) -> bytes:
        data = self.pread(self._pos, self.size - self._pos if n is None or n < 0 else n)
        self._pos += len(data)
        return data

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


class ObjectReader(BlockReader):
    """Wraps any object with `read_buffer_at_offset` and a size (libyal containers and LVs)."""

    def __init__(self, obj, size: int, name: str = "", **kw) -> None:
        self.name = name or repr(obj)
        self._obj = obj
        kw.setdefault("readahead_max", 4)
        kw.setdefault("gap", 0)  # a decoded view: the gap fill belongs to the source reader below
        super().__init__(size, **kw)

    def _fetch(self, offset: int, length: int) -> bytes:
        try:
            return self._obj.read_buffer_at_offset(length, offset)
        except (OSError, ValueError) as e:
            reraise_memory(e)
            raise_corrupt(self.name, offset, e)
            raise  # unreachable

    def _fill(self, first: int, last: int) -> dict[int, bytes]:
        # These are decoded views of the image, cached by block; the counters that matter are the source's.
        before = self.stats.requests, self.stats.bytes_read
        fetched = super()._fill(first, last)
        self.stats.requests, self.stats.bytes_read = before
        return fetched


def raise_corrupt(name: str, offset: int, err: Exception) -> None:
    from stackwatch.fleece.errors import CorruptImage

    raise CorruptImage(f"{name}: cannot read at offset {offset}: {err}") from err
