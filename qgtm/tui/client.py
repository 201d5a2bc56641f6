"""The terminal's only door to the engine: read snapshots, send commands.

`InProcessClient` drives an engine that runs as a task on the app's own event loop;
an attach client over the daemon's Unix socket will implement the same protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from qgtm.core.snapshot import EngineSnapshot
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


class InProcessClient:
    """Runs a TradingEngine as a task on the app's loop; steps happen in a worker thread."""

    def __init__(self, engine: TradingEngine) -> None:
        self.engine = engine
        self._task: asyncio.Task[int] | None = None

    def snapshot(self) -> EngineSnapshot:
        """The engine's latest snapshot."""
        return self.engine.snapshot()

    async def start(self) -> None:
        """Start the replay clock task."""
        if self._task is None:
            self._task = asyncio.create_task(self.engine.run(), name="qgtm-engine")

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
