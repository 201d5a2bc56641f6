"""One job definition, two clocks: APScheduler on the wall clock, the replay clock in demo."""

from __future__ import annotations

import asyncio
import itertools
from datetime import date, datetime, timedelta

from apscheduler.triggers.interval import IntervalTrigger

from qgtm.core.calendar import NEW_YORK
from qgtm.core.config import LiveConfig
from qgtm.engine.live.scheduler import (
    Job,
    ReplayClock,
    WallClockScheduler,
    XnysDecisionTrigger,
    build_triggers,
)


def _ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK)


def test_decision_trigger_skips_weekends_holidays_and_respects_early_closes():
    trigger = XnysDecisionTrigger()
    # Friday 2024-11-29 is the day after Thanksgiving: early close 13:00 -> decide 12:30.
    assert trigger.get_next_fire_time(None, _ny(2024, 11, 27, 16)) == _ny(2024, 11, 29, 12, 30)
    # Saturday -> Monday 15:30.
    assert trigger.get_next_fire_time(None, _ny(2024, 11, 30, 9)) == _ny(2024, 12, 2, 15, 30)
    # Right at a fire time it fires; after firing, the next session is next.
    first = trigger.get_next_fire_time(None, _ny(2024, 12, 2, 15, 30))
    assert first == _ny(2024, 12, 2, 15, 30)
    assert trigger.get_next_fire_time(first, first) == _ny(2024, 12, 3, 15, 30)
    # 2024-12-24 closes early too.
    assert trigger.get_next_fire_time(None, _ny(2024, 12, 24, 8)) == _ny(2024, 12, 24, 12, 30)


async def test_replay_clock_fires_the_same_jobs_in_simulated_time_order():
    fired: list[tuple[str, datetime]] = []

    def job(name: str):
        async def run(at: datetime) -> None:
            fired.append((name, at))

        return run

    start = _ny(2024, 11, 27, 9, 30)
    triggers = build_triggers(LiveConfig(recon_interval_s=60), start)
    jobs = [
        Job("rebalance", triggers["rebalance"], job("rebalance")),
        Job("recon", triggers["recon"], job("recon"), market_hours=True),
        Job("data_refresh", triggers["data_refresh"], job("data_refresh")),
    ]
    clock = ReplayClock(jobs, start, end=_ny(2024, 12, 2, 23))
    await clock.run()
    times = [at for _, at in fired]
    assert times == sorted(times)
    rebalances = [at for name, at in fired if name == "rebalance"]
    assert rebalances == [
        _ny(2024, 11, 27, 15, 30),
        _ny(2024, 11, 29, 12, 30),
        _ny(2024, 12, 2, 15, 30),
    ]
    recon = [at for name, at in fired if name == "recon"]
    # a full session has 390 minutes (09:30..15:59), the early close 210 (09:30..12:59)
    per_day: dict[date, int] = {}
    for at in recon:
        per_day[at.date()] = per_day.get(at.date(), 0) + 1
    assert per_day == {date(2024, 11, 27): 390, date(2024, 11, 29): 210, date(2024, 12, 2): 390}
    assert all(
        b - a == timedelta(minutes=1) for a, b in itertools.pairwise(recon) if a.date() == b.date()
    )
    # data refresh: 18:00 on weekdays, Thanksgiving included (it is a cron, not a session rule)
    refresh = [at for name, at in fired if name == "data_refresh"]
    assert refresh == [_ny(2024, 11, d, 18) for d in (27, 28, 29)] + [_ny(2024, 12, 2, 18)]
    assert clock.fired == {"rebalance": 3, "recon": 990, "data_refresh": 4}


async def test_wall_clock_scheduler_runs_the_same_definitions_on_apscheduler():
    now = datetime.now(NEW_YORK)
    triggers = build_triggers(LiveConfig(recon_interval_s=0.05), now)
    seen: list[datetime] = []
    done = asyncio.Event()

    async def recon(at: datetime) -> None:
        seen.append(at)
        if len(seen) >= 3:
            done.set()

    async def noop(at: datetime) -> None:
        return None

    scheduler = WallClockScheduler(
        [
            Job("rebalance", triggers["rebalance"], noop),
            Job("recon", triggers["recon"], recon, market_hours=True),
            Job("data_refresh", triggers["data_refresh"], noop),
        ]
    )
    task = asyncio.create_task(scheduler.run())
    await asyncio.wait_for(done.wait(), timeout=10)
    nxt = scheduler.next_fire_times()
    assert nxt["rebalance"] == XnysDecisionTrigger().get_next_fire_time(None, now)
    assert nxt["rebalance"].time().minute == 30
    assert isinstance(triggers["recon"], IntervalTrigger)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(seen) >= 3
