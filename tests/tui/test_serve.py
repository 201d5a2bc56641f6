"""`qgtm serve`: loopback by default, public only on request, and it really serves."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from qgtm.cli import main
from qgtm.tui.serve import PublicBindRefusedError, check_host, is_loopback, terminal_command


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


def test_serve_starts_on_loopback_and_serves_its_page(tmp_path: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qgtm.cli",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        page = None
        while time.monotonic() < deadline and page is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
            except httpx.TransportError:
                time.sleep(0.2)
        assert page is not None, "server did not answer"
        assert page.status_code == 200
        assert "QGTM" in page.text
        assert f"ws://127.0.0.1:{port}/ws" in page.text
    finally:
        server.terminate()
        server.wait(timeout=10)
