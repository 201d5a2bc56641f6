"""The in-process engine client: the terminal and the engine on one event loop.

`InProcessClient` drives an engine that runs as a task on the app's own event loop;
`SocketClient` (qgtm.engine.live.attach) speaks the same protocol to a running daemon.
Both satisfy `qgtm.core.protocol.EngineClient`; the CLI builds one and hands it to the
terminal, which imports nothing of the engine.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import sys
import threading
from typing import Any

from qgtm.core.protocol import Hello
from qgtm.core.snapshot import EngineSnapshot
from qgtm.engine.live.engine import TradingEngine

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

    info: Hello | None = None
    """In process there is no daemon to attach to (the terminal shows no ATTACHED)."""

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
