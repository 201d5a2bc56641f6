"""The one loopback HTTP server every HTTP fake builds on (data providers and chat APIs).

Two ways to answer, which may be combined:

* `routes`: GET path -> handler(query) -> (status, content type, body bytes), for the
  data-provider fakes (FRED, EIA, CFTC, LBMA, Alpaca data);
* `handle`: handle(method, path with query, JSON body) -> (status, JSON answer or None),
  for the JSON chat-API fakes (Discord webhooks, Telegram Bot API); it answers every
  POST, and GETs no route matches.

Every request is recorded (`requests`); `failures` lists statuses to answer with before
serving normally (e.g. [429, 503], with Retry-After: 0). HTTP/1.1 keep-alive, as the
real APIs. The server runs from construction until `close()` (or the end of a `with`).
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A fake's HTTP server: a client that hangs up mid-reply (a test that timed out on
    purpose, or ended) is not the fake's error, and its traceback would land in
    whichever test's stderr is being captured at the time."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


Handler = Callable[[dict[str, list[str]]], tuple[int, str, bytes]]
JsonHandler = Callable[[str, str, dict[str, Any]], tuple[int, dict[str, Any] | None]]


@dataclass
class Recorded:
    """One request the fake saw."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    method: str = "GET"
    body: dict[str, Any] | None = None


@dataclass
class LoopbackServer:
    """Serves `routes` and/or `handle` on 127.0.0.1 (see the module docstring)."""

    routes: dict[str, Handler] = field(default_factory=dict)
    handle: JsonHandler | None = None
    requests: list[Recorded] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    """Statuses to answer with before serving normally (e.g. [429, 503])."""

    def __post_init__(self) -> None:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def do_GET(self) -> None:
                self._serve("GET", None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length) if length else b""
                self._serve("POST", json.loads(raw) if raw else {})

            def _serve(self, method: str, body: dict[str, Any] | None) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                server.requests.append(
                    Recorded(parts.path, query, dict(self.headers), method, body)
                )
                if server.failures:
                    status = server.failures.pop(0)
                    answer = b'{"message": "try later"}'
                    self._send(status, "application/json", answer, {"Retry-After": "0"})
                    return
                route = server.routes.get(parts.path) if method == "GET" else None
                if route is not None:
                    self._send(*route(query))
                elif server.handle is not None:
                    status, reply = server.handle(method, self.path, body or {})
                    data = b"" if reply is None else json.dumps(reply).encode()
                    self._send(status, None if reply is None else "application/json", data)
                else:
                    self._send(404, "text/plain", b"not found")

            def _send(
                self, status: int, ctype: str | None, body: bytes, extra: dict | None = None
            ) -> None:
                self.send_response(status)
                if ctype is not None:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = LoopbackHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
