"""TradingDaemon: failing tasks are reported and restarted or escalate; the watchdog fires."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest

from qgtm.core.config import Config, LiveConfig
from qgtm.core.enums import KillTier
from qgtm.engine.live.daemon import TaskHealth, TaskSpec, TradingDaemon
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.live.watchdog import Heartbeat, Watchdog, read_heartbeat


def _config(short_config: Config, **live) -> Config:
    base = {"task_backoff_s": 0.01, "heartbeat_interval_s": 0.05, "watchdog": False}
    return replace(short_config, live=LiveConfig(**{**base, **live}))


async def _until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_a_task_that_raises_is_restarted_and_the_failure_is_visible(
    short_config: Config, tmp_path: Path
):
    config = _config(short_config)
    engine = TradingEngine(config, tmp_path)
    engine.pause()  # only the flaky task matters here
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) <= 2:
            raise RuntimeError(f"boom {len(runs)}")
        await asyncio.Event().wait()

    daemon = TradingDaemon(
        config, tmp_path, engine, extra_tasks=(TaskSpec("outbox", flaky),), control_socket=False
    )
    task = asyncio.create_task(daemon.run())
    await _until(lambda: len(runs) == 3 and daemon.health.get("outbox") is TaskHealth.RUNNING)
    assert daemon.restarts["outbox"] == 2
    assert "boom 2" in daemon.failures["outbox"]
    assert any("task outbox failed" in a for a in engine.snapshot().alerts)
    await _until(lambda: len(engine.audit.search(event="TASK_FAILED")) == 2)
    daemon.stop()
    await task
    engine.close()


async def test_a_task_failing_too_often_escalates_and_stops_the_daemon(
    short_config: Config, tmp_path: Path
):
    config = _config(short_config, task_max_restarts=2)
    engine = TradingEngine(config, tmp_path)
    engine.pause()

    async def broken() -> None:
        raise ValueError("always")

    daemon = TradingDaemon(
        config, tmp_path, engine, extra_tasks=(TaskSpec("feed", broken),), control_socket=False
    )
    await asyncio.wait_for(daemon.run(), timeout=20)
    assert daemon.health["feed"] is TaskHealth.FAILED
    (record,) = engine.audit.search(event="TASK_ESCALATED")
    assert record.payload["task"] == "feed"
    engine.close()


async def test_the_daemon_replays_sessions_with_recon_every_simulated_minute(
    short_config: Config, tmp_path: Path
):
    config = _config(short_config)
    engine = TradingEngine(config, tmp_path)
    daemon = TradingDaemon(config, tmp_path, engine, max_sessions=3, control_socket=False)
    done = await asyncio.wait_for(daemon.run(), timeout=60)
    assert done == 3 and engine.state.session_count() == 3
    assert daemon.clock is not None
    # regular sessions: 9:30 .. 16:00 -> 390 recon minutes per full session
    assert daemon.clock.fired["rebalance"] == 3
    assert daemon.recon.runs >= 2 * 390
    assert engine.audit.search(event="RECON_COMPLETE")
    assert engine.audit.search(event="CONFIG_CHANGED")
    engine.close()


async def test_a_blocked_loop_trips_the_watchdog_which_flattens_through_the_broker(
    short_config: Config, tmp_path: Path
):
    config = _config(short_config, watchdog=True, watchdog_timeout_s=0.5)
    engine = TradingEngine(config, tmp_path)
    for _ in range(6):
        engine.step()
    held = engine.broker.positions()
    assert held
    engine.pause()

    async def hog() -> None:
        await asyncio.sleep(0.3)
        time.sleep(2.0)  # blocks the whole event loop: no heartbeat
        await asyncio.Event().wait()

    daemon = TradingDaemon(
        config, tmp_path, engine, extra_tasks=(TaskSpec("hog", hog),), control_socket=False
    )
    assert daemon.watchdog is not None
    daemon.watchdog.poll_s = 0.05
    task = asyncio.create_task(daemon.run())
    await _until(lambda: daemon.watchdog.fired >= 1, timeout=10)
    daemon.stop()
    await task
    assert engine.kill_tier is KillTier.FLATTEN
    closing = {o.symbol: o.side.sign * o.quantity for o in engine.broker.open_orders()}
    assert closing == {s: -q for s, q in held.items()}
    assert all(o.status.is_open for o in engine.broker.open_orders())
    (record,) = engine.audit.search(event="EMERGENCY_FLATTEN")
    assert record.actor == "watchdog" and "heartbeat" in record.payload["reason"]
    engine.close()


def test_watchdog_fires_once_per_stall_and_rearms(tmp_path: Path):
    beat = Heartbeat(tmp_path)
    now = 1_000_000.0
    beat.beat(now)
    assert read_heartbeat(tmp_path / "heartbeat.sqlite") == pytest.approx(now)
    calls: list[float] = []
    dog = Watchdog(tmp_path, 10.0, lambda age: calls.append(age) or True)
    assert not dog.check(now + 5)
    assert dog.check(now + 11) and calls == [pytest.approx(11)]
    assert not dog.check(now + 20)  # same stall: no second flatten
    beat.beat(now + 21)
    assert not dog.check(now + 22)
    assert dog.check(now + 40) and len(calls) == 2
    beat.close()


async def test_an_unbindable_attach_socket_is_alerted_and_the_daemon_runs_on(
    short_config: Config, tmp_path: Path
):
    data_dir = tmp_path / ("d" * 120)  # longer than AF_UNIX socket paths may be
    config = _config(short_config)
    engine = TradingEngine(config, data_dir)
    daemon = TradingDaemon(config, data_dir, engine, max_sessions=2)
    assert await asyncio.wait_for(daemon.run(), timeout=60) == 2
    assert any("attach socket unavailable" in a for a in engine.snapshot().alerts)
    assert daemon.restarts["control"] == 0
    engine.close()


async def test_a_failing_session_restarts_the_clock_which_resumes_at_that_session(
    short_config: Config, tmp_path: Path
):
    config = _config(short_config)
    engine = TradingEngine(config, tmp_path)
    first = engine.panel.dates[engine.next_index]
    real = engine._process_session
    calls: list[int] = []

    def flaky(index: int) -> None:
        calls.append(index)
        if len(calls) == 2:
            raise OSError("disk hiccup")
        real(index)

    engine._process_session = flaky
    daemon = TradingDaemon(config, tmp_path, engine, max_sessions=3, control_socket=False)
    assert await asyncio.wait_for(daemon.run(), timeout=60) == 3
    assert daemon.restarts["clock"] == 1
    assert calls[1] == calls[2]  # the failed session is redone, not skipped
    assert engine.state.session_count() == 3
    assert engine.current_session > first
    (failed,) = engine.audit.search(event="TASK_FAILED")
    assert failed.payload["task"] == "clock" and "disk hiccup" in failed.payload["error"]
    engine.close()
