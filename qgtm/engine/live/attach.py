"""The client side of the daemon's attach socket (server: `control.ControlServer`).

A terminal started on a data dir whose engine already runs attaches with `SocketClient`;
`qgtm backtest` uses it too, to borrow the running engine's bars (`call_engine`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec

from qgtm.core.protocol import Hello, Reply, Request
from qgtm.core.snapshot import EngineSnapshot
from qgtm.engine.live import wire


class AttachError(RuntimeError):
    """The daemon's socket is missing, not ours, or the daemon did not answer."""


class SocketClient:
    """Attaches to a running daemon over its Unix socket; never trades by itself.

    Snapshots stream in from the daemon (`engine.subscribe`); every command of the
    protocol (`qgtm.core.protocol`) is callable through `call`, its result decoded as the
    command's declared result type. `info` is the daemon's hello (pid, data dir, start).
    """

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self.info: Hello | None = None
        self._latest: EngineSnapshot | None = None
        self._first = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._next_id = 0
        self.closed_reason: str | None = None

    def check_socket(self) -> None:
        """Refuse a socket that is not a socket, not ours, or open to others."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise AttachError(f"no daemon socket at {self.path}") from None
        if not stat.S_ISSOCK(st.st_mode):
            raise AttachError(f"{self.path} is not a socket")
        if st.st_uid != os.getuid():
            raise AttachError(f"{self.path} belongs to uid {st.st_uid}, not to you")
        if st.st_mode & 0o077:
            raise AttachError(f"{self.path} is reachable by other users (mode {st.st_mode:o})")

    async def start(self, subscribe: bool = True) -> None:
        """Connect, say hello, then (unless `subscribe` is False: commands only)
        subscribe and wait for the first snapshot."""
        if self._writer is not None:
            return
        self.check_socket()
        deadline = asyncio.get_running_loop().time() + min(self.timeout, 3.0)
        while True:
            try:
                self._reader, self._writer = await asyncio.open_unix_connection(
                    str(self.path), limit=wire.MAX_LINE
                )
                break
            except ConnectionRefusedError as exc:  # bound but not listening yet, or gone
                if asyncio.get_running_loop().time() > deadline:
                    raise AttachError(f"cannot attach to {self.path}: {exc}") from None
                await asyncio.sleep(0.05)
            except OSError as exc:
                raise AttachError(f"cannot attach to {self.path}: {exc}") from None
        self._pump = asyncio.create_task(self._read_loop(), name="qgtm-attach")
        self.info = await self.call("engine.hello")
        if not subscribe:
            return
        self._latest = await self.call("engine.subscribe")
        self._first.set()

    async def stop(self) -> None:
        """Detach; the daemon keeps running."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
            self._writer = None
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None

    def task_health(self) -> str:
        """ "ok" while attached, else why the connection to the daemon ended."""
        if self._writer is None and self.closed_reason is None:
            return "detached"
        return "ok" if self.closed_reason is None else f"FAILED: {self.closed_reason}"

    def snapshot(self) -> EngineSnapshot:
        """The newest snapshot the daemon pushed."""
        if self._latest is None:
            raise AttachError("not attached yet: call start() first")
        return self._latest

    def pause(self) -> None:
        """Ask the daemon to hold its replay clock."""
        self._fire("engine.pause")
        if self._latest is not None:
            self._latest = replace(self._latest, running=False)

    def resume(self) -> None:
        """Ask the daemon to restart its replay clock."""
        self._fire("engine.resume")
        if self._latest is not None:
            self._latest = replace(self._latest, running=True)

    def faster(self) -> None:
        """Ask the daemon to double its replay speed."""
        self._fire("engine.faster")

    def slower(self) -> None:
        """Ask the daemon to halve its replay speed."""
        self._fire("engine.slower")

    async def advance(self, sessions: int) -> None:
        """Ask the daemon to step `sessions` sessions now."""
        self._latest = await self.call("engine.advance", sessions=sessions)

    async def call(self, name: str, **kwargs: Any) -> Any:
        """Run the daemon's command `name`; its result is of the command's declared type."""
        raw = await self._request(name, kwargs)
        return wire.decode_result(name, raw)

    # ----- plumbing ------------------------------------------------------------------
    def _fire(self, name: str, **kwargs: Any) -> None:
        if self._writer is None:
            raise AttachError("not attached")
        self._next_id += 1
        self._writer.write(wire.encode_request(Request(self._next_id, name, kwargs)))

    async def _request(self, name: str, kwargs: dict[str, Any]) -> msgspec.Raw:
        if self._writer is None:
            raise AttachError("not attached")
        self._next_id += 1
        rid = self._next_id
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        self._writer.write(wire.encode_request(Request(rid, name, kwargs)))
        await self._writer.drain()
        try:
            answer = await asyncio.wait_for(future, self.timeout)
        finally:
            self._pending.pop(rid, None)
        if not answer.ok:
            raise RemoteCommandError(answer.error)
        return answer.result

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while line := await self._reader.readline():
                message = wire.decode_server(line)
                if not isinstance(message, Reply):
                    self._latest = message.data
                    continue
                future = self._pending.get(message.id)  # type: ignore[arg-type]
                if future is not None and not future.done():
                    future.set_result(message)
            self.closed_reason = "daemon closed the connection"
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.closed_reason = f"connection lost: {exc}"
        for future in self._pending.values():
            if not future.done():
                future.set_exception(AttachError(self.closed_reason or "detached"))


class RemoteCommandError(RuntimeError):
    """The daemon refused or failed a command; the message is the daemon's."""


def call_engine(data_dir: Path, name: str, timeout: float = 60.0, **kwargs: Any) -> Any:
    """Run the engine command `name` on the daemon of `data_dir` and return its result
    (blocking; for CLI commands). AttachError when no daemon of ours answers there,
    RemoteCommandError when it refuses or fails the command."""
    from qgtm.engine.live.control import socket_path

    async def once() -> Any:
        client = SocketClient(socket_path(data_dir), timeout=timeout)
        await client.start(subscribe=False)
        try:
            return await client.call(name, **kwargs)
        finally:
            await client.stop()

    return asyncio.run(once())
