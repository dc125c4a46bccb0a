"""Inflated units of compressed images (qcow2 clusters, vmdk grains): their cache and read-ahead rule.

Compressed units are read by their exact byte span (`BlockReader.pread_span`), never through the block
cache's rounding and read-ahead, which on compressed data fetched about twice what was used. What is
cached instead is the inflated unit, and read-ahead is decided here, in whole units that follow in the
file: ZAHEAD bytes past the asked unit, or as many bytes as the units the guest just read in sequence
before it (a file read start to end, however interleaved with other reads), so a long file costs a few
requests while a scattered metadata read costs its own span and a little more.

Measured in-process on gpt-ext4-compressed and three more `qemu-img convert -c` images (bench/fleece.md),
with a flat read-ahead of 0: 343-472 KiB, 28-40 requests; 8 KiB: 354-505 KiB, 26-37; 16 KiB: 376-538 KiB,
23-33; 32 KiB: 514-706 KiB, 19-31. This rule (16 KiB, or the run's worth): 376-579 KiB, 23-33.
"""

from __future__ import annotations

import collections

CACHE_BYTES = 16 << 20  # inflated units kept
ZAHEAD = 16 * 1024
READ_MAX = 16  # units per request (at most half the cache)
GAP = 512  # data starting this close after a unit's span still counts as contiguous in the file


class InflatedCache:
    """LRU of inflated units by index, which also remembers which units the guest asked for."""

    def __init__(self, unit_bytes: int) -> None:
        self.max_units = max(4, CACHE_BYTES // unit_bytes)
        self.read_max = min(READ_MAX, self.max_units // 2)
        self._units: collections.OrderedDict[int, bytes] = collections.OrderedDict()
        self._asked: collections.OrderedDict[int, None] = collections.OrderedDict()

    def __contains__(self, index: int) -> bool:
        return index in self._units

    def ask(self, index: int) -> bytes | None:
        """The unit if cached; either way the guest asked for it (that is what a sequential run counts)."""
        self._asked[index] = None
        self._asked.move_to_end(index)
        if len(self._asked) > 4 * READ_MAX:
            self._asked.popitem(last=False)
        data = self._units.get(index)
        if data is not None:
            self._units.move_to_end(index)
        return data

    def put(self, index: int, data: bytes) -> None:
        self._units[index] = data
        self._units.move_to_end(index)
        while len(self._units) > self.max_units:
            self._units.popitem(last=False)

    def readahead_bytes(self, index: int, span: int) -> int:
        """Bytes to read past unit `index` (compressed size `span`): ZAHEAD, or the sequential run's worth."""
        run = 0
        while run < READ_MAX and index - run - 1 in self._asked:
            run += 1
        return max(ZAHEAD, run * span)
