"""`qgtm serve`: the same terminal in a browser, through textual-serve.

Each browser tab starts `python -m qgtm.cli` (the terminal) in a subprocess and streams it
over a websocket. Only loopback by default: anyone who can open the page controls the
engine, so another host needs `--public`, and a warning is printed.

When a tab's terminal cannot start (a second tab while the first holds the book, a bad
config), textual-serve alone prints the reason on the server's stderr and leaves the page
on its splash screen forever; `TerminalService` also writes it into the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shlex
import sys
from asyncio.subprocess import Process
from pathlib import Path

from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
PUBLIC_WARNING = (
    "WARNING: serving the QGTM terminal on {host}:{port}. Anyone who can reach this "
    "address gets FULL CONTROL of the engine (pause, flatten, kill-switch actions). "
    "Put it behind an authenticating proxy or use SSH port forwarding instead."
)


class PublicBindRefusedError(ValueError):
    """A non-loopback host was asked for without --public."""


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, public: bool) -> str | None:
    """None if `host` may be used; the warning to print if it is public and allowed.

    Raises PublicBindRefusedError for a non-loopback host without `public`.
    """
    if is_loopback(host):
        return None
    if not public:
        raise PublicBindRefusedError(
            f"refusing to serve on {host}: it is not a loopback address and anyone reaching "
            "it would control the engine; add --public if you really mean it"
        )
    return PUBLIC_WARNING


def terminal_command(data_dir: Path | None, config: Path | None) -> str:
    """The shell command textual-serve runs for each browser session."""
    argv = [sys.executable, "-m", "qgtm.cli"]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    if config is not None:
        argv += ["--config", str(config)]
    return shlex.join(argv)


def failure_page(exit_code: int | None, stderr: str) -> bytes:
    """What a tab shows when its terminal ended without drawing: the reason the process
    gave on stderr (its last lines), as terminal text (the page is an xterm)."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()][-20:]
    reason = lines or [f"the terminal process exited with code {exit_code} and said nothing"]
    text = "\x1b[2J\x1b[H\x1b[1;31mQGTM could not start in this tab:\x1b[0m\r\n\r\n"
    text += "\r\n".join(f"  {line}" for line in reason)
    text += "\r\n\r\nFix the cause, then reload the page (a second tab on the same book "
    text += "needs a daemon: `qgtm --daemon`).\r\n"
    return text.encode("utf-8", "replace")


class RecordedStderr:
    """The app process's stderr as textual-serve reads it, with a copy kept."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.stream = stream
        self.data = bytearray()

    async def read(self, n: int = -1) -> bytes:
        """Read like the stream does, keeping what was read."""
        chunk = await self.stream.read(n)
        self.data += chunk
        return chunk


class TerminalService(AppService):
    """textual-serve's app process, plus: a terminal that ends before drawing anything
    shows the browser why (textual-serve only logs it on the server)."""

    drawn = False
    stderr: RecordedStderr | None = None

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Process:
        process = await super()._open_app_process(width, height)
        assert process.stderr is not None
        self.stderr = RecordedStderr(process.stderr)
        process.stderr = self.stderr  # type: ignore[assignment]
        return process

    async def on_data(self, payload: bytes) -> None:
        """The terminal drew something: it started."""
        self.drawn = True
        await super().on_data(payload)

    async def run(self) -> None:
        """Run the terminal; if it ended without drawing, write its reason into the page."""
        await super().run()
        if self.drawn or self._process is None or self.stderr is None:
            return
        self.stderr.data += await self.stderr.stream.read()  # the rest, to its end
        code = await self._process.wait()
        page = failure_page(code, self.stderr.data.decode("utf-8", "replace"))
        with contextlib.suppress(ConnectionError):  # the tab was closed meanwhile
            await self.remote_write_bytes(page)


class TerminalServer(Server):
    """textual-serve's server, running each tab's terminal as a TerminalService."""

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """textual-serve's websocket handler with TerminalService as the app process."""
        websocket = web.WebSocketResponse(heartbeat=15)
        width = _int(request.query.get("width"), 80)
        height = _int(request.query.get("height"), 24)
        service: TerminalService | None = None
        try:
            await websocket.prepare(request)
            service = TerminalService(
                self.command,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,
                download_manager=self.download_manager,
                debug=self.debug,
            )
            await service.start(width, height)
            await self._process_messages(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        finally:
            if service is not None:
                await service.stop()
        return websocket


def _int(text: str | None, default: int) -> int:
    """A query parameter as an int, `default` when absent or not a number."""
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def serve(host: str, port: int, public: bool, data_dir: Path | None, config: Path | None) -> None:
    """Serve the terminal until interrupted."""
    warning = check_host(host, public)
    if warning:
        print(warning.format(host=host, port=port), file=sys.stderr)
    print(f"QGTM terminal at http://{host}:{port}/ (Ctrl+C stops)", file=sys.stderr)
    TerminalServer(terminal_command(data_dir, config), host=host, port=port, title="QGTM").serve()
