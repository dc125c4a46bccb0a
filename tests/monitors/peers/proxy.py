"""A counting proxy in front of the real Panko API (the telemetry recipe's suggestion), which can also replay
two of Panko's quirks on demand: the 500 of a marker that is gone, and the traitless events of its READ
COMMITTED race. Everything else is forwarded unchanged (headers, X-Auth-Token included)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class PankoProxy:
    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.paths: list[str] = []
        self.fail_next_marker = 0  # answer this many marker requests with Panko's "Marker ... not found." 500
        self.strip_traits_once: set[str] = set()  # message_ids returned once with "traits": []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                proxy.paths.append(self.path)
                if "marker=" in self.path and proxy.fail_next_marker > 0:
                    proxy.fail_next_marker -= 1
                    self._send(500, json.dumps({"error_message": {"faultstring": "Marker x not found."}}).encode())
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                req = urllib.request.Request(proxy.backend + self.path, headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        status, body = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, body = exc.code, exc.read()
                except OSError:
                    status, body = 502, b"{}"
                if status == 200 and proxy.strip_traits_once and self.path.startswith("/v2/events"):
                    events = json.loads(body)
                    for ev in events:
                        if ev.get("message_id") in proxy.strip_traits_once:
                            proxy.strip_traits_once.discard(ev["message_id"])
                            ev["traits"] = []
                    body = json.dumps(events).encode()
                self._send(status, body)

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> PankoProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
