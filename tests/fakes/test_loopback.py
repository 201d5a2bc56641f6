"""The fakes' HTTP server: a client hanging up mid-reply prints nothing."""

from __future__ import annotations

import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fakes.loopback import LoopbackHTTPServer

BODY = b"x" * (32 << 20)  # far more than the socket buffers hold: the write must fail


class _Large(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


def _hang_up_mid_reply(base: type[ThreadingHTTPServer]) -> BaseException | None:
    """Serve one GET of BODY to a client that resets the connection after the headers;
    returns the error the server's handle_error was given."""
    seen: list[BaseException | None] = []
    handled = threading.Event()

    class Server(base):  # type: ignore[valid-type, misc]
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            seen.append(sys.exc_info()[1])
            super().handle_error(request, client_address)
            handled.set()

    server = Server(("127.0.0.1", 0), _Large)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        with socket.create_connection(server.server_address[:2], timeout=5) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(64).startswith(b"HTTP/1.")
            # close with RST (linger 0) while the server still has megabytes to write
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert handled.wait(10), "the server never saw the hang-up"
    finally:
        server.shutdown()
        server.server_close()
    return seen[0]


@pytest.mark.parametrize("base", [LoopbackHTTPServer, ThreadingHTTPServer])
def test_a_client_hanging_up_mid_reply_is_not_the_fakes_error(base, capsys) -> None:
    error = _hang_up_mid_reply(base)
    assert isinstance(error, (BrokenPipeError, ConnectionResetError))
    printed = capsys.readouterr().err
    if base is LoopbackHTTPServer:
        assert printed == ""
    else:  # the control: the standard server prints the traceback the fakes suppress
        assert type(error).__name__ in printed
