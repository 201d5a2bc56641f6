"""The replay clock: step the demo market's sessions at the operator's speed.

One session per interval (1 / speed seconds; speed 0 runs flat out) until stopped,
out of stored history, or `max_sessions` done; while paused the clock waits to be woken
(`TradingEngine.resume`, `set_speed`, `request_stop` set the wake event). The outbox
sender runs beside it when a publisher url is set. Each step runs in a thread
(`asyncio.to_thread`) so the event loop serving the terminal stays responsive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from qgtm.engine.live.parts import LiveEngine
from qgtm.engine.outbox import OutboxSender

log = logging.getLogger("qgtm.engine.live.engine")  # the engine's log lines, as before


async def run(engine: LiveEngine, max_sessions: int | None = None) -> int:
    """Step on the replay clock until stopped, out of data, or `max_sessions` done."""
    done = 0
    sender = _start_sender(engine)
    try:
        done = await _run_sessions(engine, max_sessions)
    finally:
        if sender is not None:
            sender[0].stop()
            await sender[1]
    return done


def _start_sender(engine: LiveEngine) -> tuple[OutboxSender, asyncio.Task] | None:
    """The outbox sender runs beside the replay clock when a publisher url is set."""
    sender = engine.make_sender()
    if sender is None:
        return None
    return sender, asyncio.create_task(sender.run(), name="outbox-sender")


async def _run_sessions(engine: LiveEngine, max_sessions: int | None) -> int:
    done = 0
    while not engine._stop.is_set():
        if max_sessions is not None and done >= max_sessions:
            break
        if not engine.running:
            engine._wake.clear()
            await engine._wake.wait()
            continue
        await sleep_interval(engine)  # the clock ticks after one interval, then steps
        if engine._stop.is_set() or not engine.running:
            continue
        if not await asyncio.to_thread(engine.step):
            engine.alerts.appendleft("end of stored history: replay finished")
            log.info("event=replay_finished session=%s", engine.current_session)
            break
        done += 1
    return done


async def sleep_interval(engine: LiveEngine) -> None:
    """Wait one interval of the clock (1 / speed s), or until woken (control, stop)."""
    delay = 0.0 if engine.speed <= 0 else 1.0 / engine.speed
    engine._wake.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(engine._wake.wait(), timeout=delay)
