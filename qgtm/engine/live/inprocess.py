"""The in-process engine client: the terminal and the engine on one event loop.

`InProcessClient` drives an engine that runs as a task on the app's own event loop;
`SocketClient` (qgtm.engine.live.attach) speaks the same protocol to a running daemon.
Both satisfy `qgtm.core.protocol.EngineClient`; the CLI builds one and hands it to the
terminal, which imports nothing of the engine.

Given a factory instead of an engine, the client builds the engine in a worker thread
when the terminal starts it, so the terminal paints its first frame while DuckDB,
Polars, Numba, the strategies and the market load (issue 21).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from multiprocessing import resource_tracker
from typing import TYPE_CHECKING, Any

from qgtm.core.protocol import Hello
from qgtm.core.snapshot import EngineSnapshot

if TYPE_CHECKING:  # the engine's modules load in the factory's thread, not at import
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


class EngineStartingError(RuntimeError):
    """The engine is not built yet: its snapshot and controls exist once `start()` has
    returned (commands sent meanwhile wait for it)."""


class InProcessClient:
    """Runs a TradingEngine as a task on the app's loop; steps happen in worker threads
    of lower OS priority than the terminal's (ENGINE_THREAD_NICE).

    `InProcessClient(engine)` drives an engine already built; `InProcessClient(
    factory=build)` builds it in `start()`, in one of those threads, so the event loop
    (and the terminal's first frame) does not wait for it. `close()` closes the engine,
    waiting for a build still under way, however far the start got.
    """

    info: Hello | None = None
    """In process there is no daemon to attach to (the terminal shows no ATTACHED)."""

    def __init__(
        self,
        engine: TradingEngine | None = None,
        *,
        factory: Callable[[], TradingEngine] | None = None,
    ) -> None:
        if (engine is None) == (factory is None):
            raise TypeError("InProcessClient takes an engine or a factory, not both")
        self._engine = engine
        self._factory = factory
        if factory is not None:
            # The engine's backtest jobs need multiprocessing's resource tracker, which
            # cannot start once Textual has replaced sys.stderr (BacktestService starts
            # it while the engine is built): start it now, before the terminal runs.
            resource_tracker.ensure_running()
        self._building: concurrent.futures.Future[TradingEngine] | None = None
        self._task: asyncio.Task[int] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def engine(self) -> TradingEngine:
        """The engine (EngineStartingError while the factory still builds it)."""
        if self._engine is None:
            raise EngineStartingError("the engine is still starting")
        return self._engine

    def snapshot(self) -> EngineSnapshot:
        """The engine's latest snapshot."""
        return self.engine.snapshot()

    async def start(self) -> None:
        """Build the engine if a factory was given, then start the replay clock task;
        engine work (the build included) goes to low-priority threads.

        The engine runs its steps with `asyncio.to_thread`, so the loop's default
        executor is replaced by one whose threads lower their own priority. An error of
        the factory (bad market data, say) is raised here.
        """
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                thread_name_prefix="qgtm-engine", initializer=lower_thread_priority
            )
            asyncio.get_running_loop().set_default_executor(self._executor)
        if self._engine is None:
            await self._built()
        if self._task is None:
            self._task = asyncio.create_task(self.engine.run(), name="qgtm-engine")

    async def _built(self) -> TradingEngine:
        """The engine, waiting for (and, the first time, starting) the factory's build."""
        if self._engine is not None:
            return self._engine
        if self._building is None:
            if self._factory is None or self._executor is None:
                raise EngineStartingError("the engine is not started: call start() first")
            self._building = self._executor.submit(self._factory)
        # a cancelled wait leaves the build running; close() closes what it builds
        engine = await asyncio.wrap_future(self._building)
        self._engine = engine
        return engine

    def close(self) -> None:
        """Close the engine (after `stop()`), waiting first for a build in progress, so
        a terminal quit while the engine was still starting leaves nothing open."""
        engine = self._engine
        if engine is None and self._building is not None:
            try:
                engine = self._building.result()
            except BaseException:  # the build failed (start() raised it) or never ran
                engine = None
        if engine is not None:
            engine.close()

    def task_health(self) -> str:
        """The engine task as the terminal sees it: "ok" while it runs, "finished" once
        the replay ran out of data, "FAILED: <error>" if it died, "starting" while the
        factory builds the engine, "stopped" before start."""
        task = self._task
        if task is None:
            building = self._building is not None and not self._building.done()
            return "starting" if building else "stopped"
        if not task.done():
            return "ok"
        if task.cancelled():
            return "stopped"
        error = task.exception()
        return "finished" if error is None else f"FAILED: {error}"

    async def stop(self) -> None:
        """Let the current step finish, then stop the task (nothing runs before start)."""
        if self._engine is None:
            return
        self._engine.request_stop()
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
        """Process `sessions` sessions now, off the event loop (once the engine is built)."""
        engine = await self._built()
        for _ in range(sessions):
            if not await asyncio.to_thread(engine.step):
                break

    async def call(self, name: str, **kwargs: Any) -> Any:
        """Run an engine command off the event loop, between steps; a command sent while
        the engine starts runs once it is built."""
        engine = await self._built()
        return await asyncio.to_thread(engine.call, name, **kwargs)
