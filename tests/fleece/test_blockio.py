"""Block cache, read-ahead and the HTTP status handling (206 / 200 / 400 / 416) against a real local server."""

from __future__ import annotations

import os

import pytest

from stackwatch.fleece.blockio import BLOCK, BlockReader, LocalReader
from stackwatch.fleece.errors import RangeNotSupported, SourceError
from stackwatch.fleece.http import HTTPRangeReader, download


class MemReader(BlockReader):
    def __init__(self, data: bytes, **kw) -> None:
        self.data, self.fetches = data, []
        super().__init__(len(data), **kw)

    def _fetch(self, offset: int, length: int) -> bytes:
        self.fetches.append((offset, length))
        return self.data[offset : offset + length]


DATA = os.urandom(1 << 20)


def test_reads_are_exact_and_cached():
    r = MemReader(DATA, block=4096)
    assert r.pread(100, 5000) == DATA[100:5100]
    assert r.stats.requests == 1 and r.fetches == [(0, 8192)]
    assert r.pread(4000, 100) == DATA[4000:4100]
    assert r.stats.requests == 1 and r.stats.cache_hits >= 1
    r.seek(-10, os.SEEK_END)
    assert r.read() == DATA[-10:] and r.read(5) == b""


def test_lru_evicts_oldest():
    r = MemReader(DATA, block=4096, cache_blocks=2, readahead_max=1)
    for off in (0, 8192 * 2, 8192 * 4):
        r.pread(off, 1)
    r.pread(0, 1)
    assert r.stats.requests == 4  # block 0 was evicted and fetched again


def test_readahead_grows_on_sequential_misses_only():
    r = MemReader(DATA, block=4096, readahead_max=8)
    for off in range(0, 64 * 4096, 4096):
        r.pread(off, 4096)
    assert [n // 4096 for _, n in r.fetches][:4] == [1, 2, 4, 8]
    assert r.stats.requests < 64 // 4
    s = MemReader(DATA, block=4096, readahead_max=8, gap=0)
    for off in range(0, 64 * 4096, 3 * 4096):  # strided: never sequential
        s.pread(off, 10)
    assert all(n == 4096 for _, n in s.fetches)


def test_gap_to_a_cached_neighbour_is_fetched_with_the_miss():
    r = MemReader(DATA, block=4096, gap=4)
    r.pread(10 * 4096, 10)  # block 10
    r.pread(13 * 4096, 10)  # 2 blocks after it: the gap 11..12, and near-sequential, so twice as long
    assert r.fetches[-1] == (11 * 4096, 4 * 4096)
    r.pread(7 * 4096, 10)  # 2 blocks before it: fetches 7..9 (forward gap)
    assert r.fetches[-1] == (7 * 4096, 3 * 4096)
    r.pread(30 * 4096, 10)  # far away: one block only
    assert r.fetches[-1] == (30 * 4096, 4096)
    assert r.pread(0, 20 * 4096) == DATA[: 20 * 4096]


def test_span_reads_exactly_what_is_missing_and_starts_no_readahead():
    r = MemReader(DATA, block=4096, gap=4)
    assert r.pread_span(100, 5000) == DATA[100:5100]
    assert r.fetches == [(100, 5000)]  # not rounded out to blocks
    assert r.pread_span(2000, 1000) == DATA[2000:3000]  # no whole block was cached: fetched again
    assert r.fetches[-1] == (2000, 1000)
    r.pread(4096 * 2, 10)  # block 2 into the cache
    assert r.pread_span(4096 * 2 + 50, 4096 * 3) == DATA[4096 * 2 + 50 : 4096 * 5 + 50]
    assert r.fetches[-1] == (4096 * 3, 4096 * 2 + 50)  # the cached head came from the cache
    assert r.pread(4096 * 3, 4096) == DATA[4096 * 3 : 4096 * 4]  # covered whole by the span: cached
    n = len(r.fetches)
    r.pread(4096 * 5, 10)  # where the span ended: a plain one-block miss, no grown window
    assert r.fetches[n:] == [(4096 * 5, 4096)]
    assert r.stats.requests == len(r.fetches) and r.stats.bytes_read == sum(n for _, n in r.fetches)


def test_local_reader_counts(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(DATA)
    r = LocalReader(p)
    assert r.pread(70000, 10) == DATA[70000:70010]
    assert r.stats.bytes_read == BLOCK and r.stats.requests == 1  # the one block holding 70000..70009
    with pytest.raises(SourceError, match="cannot open"):
        LocalReader(tmp_path / "missing")


@pytest.fixture
def data_server(tmp_path):
    import rangeserver

    (tmp_path / "blob").write_bytes(DATA)
    srv, url = rangeserver.serve(str(tmp_path))
    yield srv, url
    srv.shutdown()


def test_http_206(data_server):
    srv, url = data_server
    r = HTTPRangeReader(url + "blob")
    assert r.size == len(DATA)
    assert r.pread(123456, 70000) == DATA[123456:193456]
    assert r.stats.requests == srv.requests == 2  # size probe + one ranged read
    assert srv.bytes_sent == 1 + r.stats.bytes_read


def test_http_200_means_no_ranges(data_server, tmp_path):
    srv, url = data_server
    with (tmp_path / "big").open("wb") as f:
        f.truncate(256 << 20)
    with pytest.raises(RangeNotSupported, match="--download"):
        HTTPRangeReader(url + "norange/big")
    srv.shutdown()  # waits for the handler: it stops when we close the connection
    assert srv.bytes_sent < 256 << 20  # we did not read the whole body


def test_http_400_like_glance_without_seekable_store(data_server):
    _srv, url = data_server
    with pytest.raises(RangeNotSupported, match="HTTP 400.*--download"):
        HTTPRangeReader(url + "nostore/blob")
    r = download(url + "nostore/blob")
    assert r.pread(0, 100) == DATA[:100] and r.size == len(DATA)


def test_http_416_past_end(data_server):
    _srv, url = data_server
    r = HTTPRangeReader(url + "blob")
    r.size += 1 << 20  # pretend the image is larger than the server's object
    with pytest.raises(SourceError, match="416"):
        r.pread(len(DATA) + 4096, 10)


def test_http_404(data_server):
    _srv, url = data_server
    with pytest.raises(SourceError, match="HTTP 404"):
        HTTPRangeReader(url + "nothing")
