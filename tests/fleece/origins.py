"""Loopback HTTP origins that remember every request, for the tests that credentials and reads never leave
an image's origin: the Range server of scripts/fleece/rangeserver.py, plus a log of each request's path and
headers, redirects, and a Glance version document (openstacksdk discovers the image endpoint's version
before it hands out its URL, as with a real Glance)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

from rangeserver import RangeHandler


@dataclass
class Seen:
    """A request as the server got it."""

    path: str
    headers: dict[str, str]


@dataclass
class Origin:
    server: ThreadingHTTPServer
    url: str  # http://127.0.0.1:PORT/  (ends in /)
    seen: list[Seen] = field(default_factory=list)
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location
    documents: dict[str, dict] = field(default_factory=dict)  # path -> JSON body

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]

    def with_header(self, name: str, value: str) -> list[str]:
        """Paths of the requests that carried header `name` with `value` (a token)."""
        return [s.path for s in self.seen if s.headers.get(name.lower()) == value]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Handler(RangeHandler):
    origin: Origin

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        origin = self.server.origin  # type: ignore[attr-defined]
        with self.server.lock:  # type: ignore[attr-defined]
            origin.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
        path = self.path.split("?", 1)[0]
        if path in origin.redirects:
            self.send_response(302)
            self.send_header("Location", origin.redirects[path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path in origin.documents:
            body = json.dumps(origin.documents[path]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # clients hang up mid-body on purpose
        pass


def start(directory: str) -> Origin:
    """An origin serving `directory` on 127.0.0.1 (a free port) from a daemon thread; `stop()` it."""

    def handler(*a, **k):
        return _Handler(*a, directory=directory, **k)

    srv = _Server(("127.0.0.1", 0), handler)
    srv.lock = threading.Lock()  # type: ignore[attr-defined]
    srv.requests = 0  # type: ignore[attr-defined]
    srv.bytes_sent = 0  # type: ignore[attr-defined]
    origin = Origin(srv, f"http://127.0.0.1:{srv.server_address[1]}/")
    srv.origin = origin  # type: ignore[attr-defined]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return origin


def glance_versions(origin: Origin, prefix: str = "/image") -> None:
    """Answer openstacksdk's version discovery at `prefix` as Glance does: v2 at `<prefix>/v2/`."""
    doc = {
        "versions": [
            {
                "id": "v2.16",
                "status": "CURRENT",
                "links": [{"rel": "self", "href": f"{origin.url.rstrip('/')}{prefix}/v2/"}],
            }
        ]
    }
    for p in (prefix, prefix + "/", prefix + "/v2", prefix + "/v2/"):
        origin.documents[p] = doc
