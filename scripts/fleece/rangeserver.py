"""Loopback HTTP server with single-range support, for fleece tests and benchmarks.

Ported from the stackwatch shared reference recipe fleece-fixtures/rangeio.py (same authors, Apache-2.0),
with 416 for unsatisfiable ranges and two misbehaving modes under path prefixes:
  /norange/<file>   ignores Range and answers 200 with the whole file (a plain web server)
  /nostore/<file>   answers 400 to any Range (Glance when its store cannot seek)
http.server has no Range support of its own. The server counts requests and bytes it sent.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class RangeHandler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a) -> None:  # quiet
        pass

    def setup(self) -> None:
        # Headers and body go out in separate writes; with Nagle on, a small body waits for the client's
        # delayed ACK of the headers (~40 ms per request on loopback, measured with 16 KiB ranges).
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        mode = ""
        for m in ("/norange/", "/nostore/"):
            if path.startswith(m):
                mode, path = m.strip("/"), "/" + path[len(m) :]
        local = os.path.join(self.directory, path.lstrip("/"))
        if not os.path.isfile(local):
            self.send_error(404)
            return
        size = os.path.getsize(local)
        rng = self.headers.get("Range")
        m = re.match(r"bytes=(\d+)-(\d*)$", rng or "")
        srv = self.server
        with srv.lock:  # type: ignore[attr-defined]
            srv.requests += 1  # type: ignore[attr-defined]
        if rng and mode == "nostore":
            self.send_error(400, "Range not supported by this store")
            return
        with open(local, "rb") as f:
            if m and mode != "norange":
                s = int(m.group(1))
                e = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
                if s >= size or e < s:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {s}-{e}/{size}")
                length = e - s + 1
                f.seek(s)
            else:
                self.send_response(200)
                length = size
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            try:
                sent = 0
                while sent < length:
                    chunk = f.read(min(1 << 20, length - sent))
                    if not chunk:
                        break
                    # Count before writing: a client that has the bytes must already see them counted.
                    with srv.lock:  # type: ignore[attr-defined]
                        srv.bytes_sent += len(chunk)  # type: ignore[attr-defined]
                    self.wfile.write(chunk)
                    sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:  # clients hang up mid-body on purpose
        pass


def serve(directory: str, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start the server on 127.0.0.1 in a daemon thread; returns (server, base URL ending in /)."""

    def handler(*a, **k):
        return RangeHandler(*a, directory=directory, **k)

    srv = _Server(("127.0.0.1", port), handler)
    srv.daemon_threads = True
    srv.lock = threading.Lock()  # type: ignore[attr-defined]
    srv.requests = 0  # type: ignore[attr-defined]
    srv.bytes_sent = 0  # type: ignore[attr-defined]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/"


__all__ = ["serve", "RangeHandler"]
