"""`qgtm serve`: loopback by default, public only on request, and it really serves."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import httpx
import pytest

from qgtm.cli import main
from qgtm.engine.lock import EngineLock
from qgtm.tui.serve import (
    PublicBindRefusedError,
    check_host,
    failure_page,
    is_loopback,
    terminal_command,
)


def test_loopback_hosts_are_recognised() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.3.2.1", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.5", "example.org"))


def test_a_public_host_needs_the_flag_and_then_warns() -> None:
    with pytest.raises(PublicBindRefusedError, match="add --public"):
        check_host("0.0.0.0", public=False)
    assert "FULL CONTROL" in (check_host("0.0.0.0", public=True) or "")
    assert check_host("127.0.0.1", public=False) is None


def test_the_cli_refuses_a_public_host_without_the_flag(capsys, tmp_path: Path) -> None:
    code = main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert code == 2
    assert "refusing to serve on 0.0.0.0" in capsys.readouterr().err


def test_the_served_command_is_the_terminal_on_the_same_book(tmp_path: Path) -> None:
    command = terminal_command(tmp_path, None)
    assert command.endswith(f"-m qgtm.cli --data-dir {tmp_path}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(data_dir: Path) -> Iterator[int]:
    """A real `qgtm serve` on a free loopback port, answering its page; yields the port."""
    port = _free_port()
    argv = [sys.executable, "-m", "qgtm.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(
        [*argv, "--data-dir", str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_serve_starts_on_loopback_and_serves_its_page(tmp_path: Path) -> None:
    with serving(tmp_path) as port:
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200
        assert "QGTM" in page.text
        assert f"ws://127.0.0.1:{port}/ws" in page.text


async def _terminal_text(url: str, until: str, timeout: float) -> str:
    """What a browser tab's terminal receives over the websocket, until `until` shows
    or `timeout` seconds pass (one deadline: the server's pings keep a receive going)."""
    received = ""
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.BINARY:
                        received += message.data.decode("utf-8", "replace")
                    if until in received:
                        break
    return received


async def test_a_tab_whose_terminal_cannot_start_says_why_in_the_page(tmp_path: Path) -> None:
    """The second tab with no daemon: the first tab's terminal holds the book (its lock,
    no attach socket), so this tab's terminal exits at once. The page says why instead
    of waiting on the splash screen forever."""
    book = tmp_path / "book"
    first_tab = EngineLock(book)
    first_tab.acquire()
    try:
        with serving(book) as port:
            url = f"ws://127.0.0.1:{port}/ws?width=100&height=30"
            text = await _terminal_text(url, until="reload the page", timeout=90)
    finally:
        first_tab.release()
    assert "QGTM could not start in this tab" in text
    assert f"an engine already runs on {book} and cannot be attached to" in text
    assert "reload the page" in text


def test_the_failure_page_shows_the_last_lines_of_stderr_or_the_exit_code() -> None:
    page = failure_page(2, "noise\n\nqgtm: no theme 'neon'\n").decode()
    assert "noise\r\n  qgtm: no theme 'neon'" in page
    assert "exited with code 2 and said nothing" in failure_page(2, "").decode()
