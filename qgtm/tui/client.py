"""The terminal's only door to the engine: read snapshots, send commands.

`InProcessClient` drives an engine that runs as a task on the app's own event loop;
an attach client over the daemon's Unix socket will implement the same protocol.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import stat
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from qgtm.core.snapshot import EngineSnapshot
from qgtm.engine.live import wire
from qgtm.engine.live.engine import TradingEngine


class EngineClient(Protocol):
    """What a screen may ask of the engine."""

    def snapshot(self) -> EngineSnapshot:
        """The latest state; cheap, call it as often as you like."""
        ...

    async def start(self) -> None:
        """Begin running (or attach); called once when the app mounts."""
        ...

    async def stop(self) -> None:
        """Stop running (or detach) cleanly; called when the app exits."""
        ...

    def pause(self) -> None:
        """Stop the replay clock after the current step."""
        ...

    def resume(self) -> None:
        """Restart the replay clock."""
        ...

    def faster(self) -> None:
        """Double the replay speed."""
        ...

    def slower(self) -> None:
        """Halve the replay speed."""
        ...

    async def advance(self, sessions: int) -> None:
        """Step the engine by `sessions` sessions now, whether paused or not."""
        ...

    async def call(self, name: str, **kwargs: Any) -> Any:
        """Run the engine command `name` (e.g. "risk.request_reset") and return its result.

        Results are plain data (dataclasses of core types) so they can cross a socket.
        """
        ...


ENGINE_THREAD_NICE = 10
"""Niceness of the threads that run engine steps and commands next to the terminal.

The terminal's own (event-loop) thread stays at the process's niceness, so on a busy
machine the OS runs key presses and redraws before the replay's next step; the engine
still gets every core the terminal leaves idle. Linux only (there a thread id names one
thread for setpriority); elsewhere threads keep the process's priority.
"""


def lower_thread_priority(nice: int | None = None) -> None:
    """Lower the calling thread's scheduling priority by `nice` (default
    ENGINE_THREAD_NICE; Linux only, elsewhere a no-op)."""
    nice = ENGINE_THREAD_NICE if nice is None else nice
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + nice))


class InProcessClient:
    """Runs a TradingEngine as a task on the app's loop; steps happen in worker threads
    of lower OS priority than the terminal's (ENGINE_THREAD_NICE)."""

    def __init__(self, engine: TradingEngine) -> None:
        self.engine = engine
        self._task: asyncio.Task[int] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    def snapshot(self) -> EngineSnapshot:
        """The engine's latest snapshot."""
        return self.engine.snapshot()

    async def start(self) -> None:
        """Start the replay clock task; engine work goes to low-priority threads.

        The engine runs its steps with `asyncio.to_thread`, so the loop's default
        executor is replaced by one whose threads lower their own priority.
        """
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                thread_name_prefix="qgtm-engine", initializer=lower_thread_priority
            )
            asyncio.get_running_loop().set_default_executor(self._executor)
        if self._task is None:
            self._task = asyncio.create_task(self.engine.run(), name="qgtm-engine")

    def task_health(self) -> str:
        """The engine task as the terminal sees it: "ok" while it runs, "finished" once
        the replay ran out of data, "FAILED: <error>" if it died, "stopped" before start."""
        task = self._task
        if task is None:
            return "stopped"
        if not task.done():
            return "ok"
        if task.cancelled():
            return "stopped"
        error = task.exception()
        return "finished" if error is None else f"FAILED: {error}"

    async def stop(self) -> None:
        """Let the current step finish, then stop the task."""
        self.engine.request_stop()
        if self._task is not None:
            await self._task
            self._task = None

    def pause(self) -> None:
        """Hold the replay clock."""
        self.engine.pause()

    def resume(self) -> None:
        """Restart the replay clock."""
        self.engine.resume()

    def faster(self) -> None:
        """Double the replay speed."""
        self.engine.faster()

    def slower(self) -> None:
        """Halve the replay speed."""
        self.engine.slower()

    async def advance(self, sessions: int) -> None:
        """Process `sessions` sessions now, off the event loop."""
        for _ in range(sessions):
            if not await asyncio.to_thread(self.engine.step):
                break

    async def call(self, name: str, **kwargs: Any) -> Any:
        """Run an engine command off the event loop, between steps."""
        return await asyncio.to_thread(self.engine.call, name, **kwargs)


class AttachError(RuntimeError):
    """The daemon's socket is missing, not ours, or the daemon did not answer."""


class SocketClient:
    """Attaches to a running daemon over its Unix socket; never trades by itself.

    Snapshots stream in from the daemon (`subscribe`); commands are forwarded, and any
    engine command registered on the daemon is callable through `call`.
    """

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self.info: dict[str, Any] = {}
        self._latest: EngineSnapshot | None = None
        self._first = asyncio.Event()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
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

    async def start(self) -> None:
        """Connect, say hello, subscribe and wait for the first snapshot."""
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
        self.info = await self._request({"op": "hello"})
        self._latest = wire.decode_snapshot(await self._request({"op": "subscribe"}))
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
        self._fire({"op": "pause"})
        if self._latest is not None:
            self._latest = replace(self._latest, running=False)

    def resume(self) -> None:
        """Ask the daemon to restart its replay clock."""
        self._fire({"op": "resume"})
        if self._latest is not None:
            self._latest = replace(self._latest, running=True)

    def faster(self) -> None:
        """Ask the daemon to double its replay speed."""
        self._fire({"op": "faster"})

    def slower(self) -> None:
        """Ask the daemon to halve its replay speed."""
        self._fire({"op": "slower"})

    async def advance(self, sessions: int) -> None:
        """Ask the daemon to step `sessions` sessions now."""
        self._latest = wire.decode_snapshot(
            await self._request({"op": "advance", "sessions": sessions})
        )

    async def call(self, name: str, **kwargs: Any) -> Any:
        """Run the daemon's engine command `name` and return its result."""
        packed = await self._request({"op": "call", "name": name, "kwargs": kwargs})
        return wire.unpack_result(packed)

    # ----- plumbing ------------------------------------------------------------------
    def _fire(self, message: dict[str, Any]) -> None:
        if self._writer is None:
            raise AttachError("not attached")
        self._next_id += 1
        self._writer.write(wire.encode({"id": self._next_id, **message}))

    async def _request(self, message: dict[str, Any]) -> Any:
        if self._writer is None:
            raise AttachError("not attached")
        self._next_id += 1
        rid = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        self._writer.write(wire.encode({"id": rid, **message}))
        await self._writer.drain()
        try:
            return await asyncio.wait_for(future, self.timeout)
        finally:
            self._pending.pop(rid, None)

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while line := await self._reader.readline():
                message = wire.decode(line)
                if message.get("push") == "snapshot":
                    self._latest = wire.decode_snapshot(message["data"])
                    continue
                future = self._pending.get(message.get("id"))  # type: ignore[arg-type]
                if future is None or future.done():
                    continue
                if message.get("ok"):
                    future.set_result(message.get("result"))
                else:
                    future.set_exception(RemoteCommandError(str(message.get("error"))))
            self.closed_reason = "daemon closed the connection"
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.closed_reason = f"connection lost: {exc}"
        for future in self._pending.values():
            if not future.done():
                future.set_exception(AttachError(self.closed_reason or "detached"))


class RemoteCommandError(RuntimeError):
    """The daemon refused or failed a command; the message is the daemon's."""
