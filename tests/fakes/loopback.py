"""A loopback HTTP server for fakes: routes by path, records requests, injects failures."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

Handler = Callable[[dict[str, list[str]]], tuple[int, str, bytes]]


@dataclass
class Recorded:
    """One request the fake saw."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class LoopbackServer:
    """Serves `routes` (path -> handler(query) -> (status, content type, body)) on 127.0.0.1."""

    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    """Statuses to answer with before serving normally (e.g. [429, 503])."""

    def __post_init__(self) -> None:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                server.requests.append(Recorded(parts.path, query, dict(self.headers)))
                if server.failures:
                    status = server.failures.pop(0)
                    self._send(
                        status,
                        "application/json",
                        b'{"message": "try later"}',
                        {"Retry-After": "0"},
                    )
                    return
                handler = server.routes.get(parts.path)
                if handler is None:
                    self._send(404, "text/plain", b"not found")
                    return
                status, ctype, body = handler(query)
                self._send(status, ctype, body)

            def _send(
                self, status: int, ctype: str, body: bytes, extra: dict | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:PORT."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
