"""HTTP(S) byte-range reader: plain URLs, Glance image data and Swift objects share it.

One range per request (multipart ranges are not worth their parsing). 206 is the normal answer; 200
means the server ignored Range and would send the whole image, so we stop reading and say so; 416 means
we asked past the end. Glance answers 400 to a Range when its store cannot seek: that is reported as
RangeNotSupported, whose message offers download mode. `session` is anything with requests' `get`
(a requests.Session or a keystoneauth1 Session, which adds the token and the endpoint's TLS settings).
Redirects are followed by us, and only on the URL's own origin (`get_on_origin`).
"""

from __future__ import annotations

import re
import tempfile
from urllib.parse import urljoin

from stackwatch.fleece.backing import origin, origin_text
from stackwatch.fleece.blockio import BlockReader, LocalReader
from stackwatch.fleece.errors import RangeNotSupported, RedirectRefused, SourceError

_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
DOWNLOAD_HINT = "the server cannot serve byte ranges; rerun with --download to fetch the whole image first"


def _session(session):
    if session is not None:
        return session
    import requests

    return requests.Session()


def get_on_origin(session, url: str, headers: dict, timeout: float):
    """GET `url` (streamed), following redirects only on its own origin, at most MAX_REDIRECTS.

    The session's own redirect handling is off: keystoneauth re-sends every header, X-Auth-Token
    included, to wherever Location points, and requests drops only Authorization on a cross-host
    redirect, not a token header. A redirect to another origin is refused (RedirectRefused) without a
    request there; the error names the origin only (a Location may carry a signature in its query).
    """
    here = url
    for _hop in range(MAX_REDIRECTS + 1):
        try:
            resp = session.get(here, headers=headers, stream=True, timeout=timeout, allow_redirects=False)
        except Exception as e:  # requests / keystoneauth raise their own hierarchies
            if getattr(getattr(e, "response", None), "status_code", None) is None:
                raise SourceError(f"{url}: {type(e).__name__}: {e}") from e
            resp = e.response  # type: ignore[attr-defined]
        if resp.status_code not in REDIRECTS:
            return resp
        location = resp.headers.get("Location")
        resp.close()
        if not location:
            raise SourceError(f"{url}: HTTP {resp.status_code} redirect without a Location")
        nxt = urljoin(here, location)
        if origin(nxt) != origin(url):
            raise RedirectRefused(
                f"{url}: the server redirected to another origin, {origin_text(nxt)}; not followed, because the "
                "session's credentials would go with the request (fleece that URL directly if you trust it)"
            )
        here = nxt
    raise SourceError(f"{url}: more than {MAX_REDIRECTS} redirects")


class HTTPRangeReader(BlockReader):
    """Read `url` with `Range: bytes=a-b` requests through `session`."""

    def __init__(self, url: str, session=None, headers: dict | None = None, timeout: float = 60.0, **kw) -> None:
        self.name = url
        self.url = url
        self._session = _session(session)
        self._headers = dict(headers or {})
        self._timeout = timeout
        size = self._probe()
        self.identity = self.url
        super().__init__(size, **kw)
        self.stats.requests += 1  # the probe

    def _get(self, first: int, last: int):
        return get_on_origin(self._session, self.url, dict(self._headers, Range=f"bytes={first}-{last}"), self._timeout)

    def _probe(self) -> int:
        """Size from Content-Range of a 1-byte request (HEAD is not allowed on Glance's data URL)."""
        resp = self._get(0, 0)
        if getattr(resp, "url", None):  # after a redirect (on this origin): read there, find backing files there
            self.url = resp.url
        try:
            self._check(resp, 0)
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not m or m.group(3) == "*":
                raise RangeNotSupported(f"{self.url}: 206 without a usable Content-Range; {DOWNLOAD_HINT}")
            return int(m.group(3))
        finally:
            resp.close()

    def _check(self, resp, offset: int) -> None:
        code = resp.status_code
        if code == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if m and int(m.group(1)) != offset:
                raise SourceError(f"{self.url}: asked for offset {offset}, server sent {m.group(0)}")
            return
        if code == 200:
            raise RangeNotSupported(f"{self.url}: server ignored Range (HTTP 200); {DOWNLOAD_HINT}")
        if code == 400:
            raise RangeNotSupported(
                f"{self.url}: HTTP 400 to a Range request (a Glance store that cannot seek answers so); {DOWNLOAD_HINT}"
            )
        if code == 416:
            raise SourceError(f"{self.url}: HTTP 416, range at {offset} is past the end of the image")
        raise SourceError(f"{self.url}: HTTP {code}")

    def _fetch(self, offset: int, length: int) -> bytes:
        resp = self._get(offset, offset + length - 1)
        try:
            self._check(resp, offset)
            data = resp.raw.read(length + 1, decode_content=True) if hasattr(resp, "raw") else resp.content
            return data[:length] if len(data) > length else data
        finally:
            resp.close()


def download(url: str, session=None, headers: dict | None = None, chunk: int = 1 << 20) -> LocalReader:
    """Download mode: fetch the whole image into a temporary file (deleted on close) and read that."""
    s = _session(session)
    tmp = tempfile.NamedTemporaryFile(prefix="fleece-", suffix=".img")  # noqa: SIM115 - lives with the reader
    try:
        resp = get_on_origin(s, url, dict(headers or {}), 600)
        if resp.status_code != 200:
            raise SourceError(f"{url}: HTTP {resp.status_code} on download")
        total = 0
        for part in resp.iter_content(chunk):
            tmp.write(part)
            total += len(part)
        tmp.flush()
    except Exception:
        tmp.close()
        raise
    reader = LocalReader(tmp.name)
    reader.stats.requests, reader.stats.bytes_read = 1, total
    reader._tmp = tmp  # type: ignore[attr-defined]  # keeps the file until the reader goes
    return reader
