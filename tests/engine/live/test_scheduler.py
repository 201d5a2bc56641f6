"""One job definition, two clocks: the wall clock (fake in tests) and the replay clock in demo."""

from __future__ import annotations

import asyncio
import itertools
from datetime import date, datetime, timedelta

from qgtm.core.calendar import NEW_YORK
from qgtm.core.config import LiveConfig
from qgtm.engine.live.clock import FakeClock
from qgtm.engine.live.scheduler import (
    Job,
    ReplayClock,
    WallClock,
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


async def test_wall_clock_fires_the_same_definitions_on_a_fake_clock_without_sleeping():
    # Tuesday 2024-11-26 10:00 New York; the clock may run until Friday night.
    clock = FakeClock(_ny(2024, 11, 26, 10), limit=_ny(2024, 11, 29, 23))
    fired: list[tuple[str, datetime]] = []

    def job(name: str):
        async def run(at: datetime) -> None:
            assert clock.now() == at  # each job runs at its own moment
            fired.append((name, at))

        return run

    triggers = build_triggers(LiveConfig(recon_interval_s=60), clock.now())
    wall = WallClock(
        [
            Job("rebalance", triggers["rebalance"], job("rebalance")),
            Job("recon", triggers["recon"], job("recon"), market_hours=True),
            Job("data_refresh", triggers["data_refresh"], job("data_refresh")),
        ],
        clock,
    )
    task = asyncio.create_task(wall.run())
    while clock.waiting_for is None or clock.waiting_for <= clock.limit:
        await asyncio.sleep(0)
    # Blocked at the limit: the next fire is Monday's open (recon, coalesced over the weekend).
    assert clock.waiting_for == _ny(2024, 12, 2, 9, 30)
    rebalances = [at for name, at in fired if name == "rebalance"]
    # Wednesday 15:30, no Thursday (Thanksgiving), Friday's early close 13:00 -> 12:30
    assert rebalances == [
        _ny(2024, 11, 26, 15, 30),
        _ny(2024, 11, 27, 15, 30),
        _ny(2024, 11, 29, 12, 30),
    ]
    recon_days = {at.date() for name, at in fired if name == "recon"}
    assert date(2024, 11, 28) not in recon_days
    assert [at for name, at in fired if name == "data_refresh"] == [
        _ny(2024, 11, d, 18) for d in (26, 27, 28, 29)
    ]
    times = [at for _, at in fired]
    assert times == sorted(times)
    wall.stop()
    clock.allow_until(None)
    await asyncio.wait_for(task, timeout=5)


async def test_wall_clock_coalesces_missed_runs_and_skips_stale_ones():
    """A daemon that was busy past several fire times runs each job once, not N times."""
    clock = FakeClock(_ny(2024, 12, 3, 9, 30))
    runs: list[datetime] = []

    async def slow_recon(at: datetime) -> None:
        runs.append(at)
        clock.advance_to(at + timedelta(minutes=10))  # this run took ten minutes

    triggers = build_triggers(LiveConfig(recon_interval_s=60), clock.now())
    wall = WallClock([Job("recon", triggers["recon"], slow_recon, market_hours=True)], clock)
    task = asyncio.create_task(wall.run())
    while len(runs) < 3:
        await asyncio.sleep(0)
    wall.stop()
    await asyncio.wait_for(task, timeout=5)
    # 09:30 ran until 09:40; the ten fire times it missed collapse into one run (09:40).
    assert runs[:3] == [_ny(2024, 12, 3, 9, 30), _ny(2024, 12, 3, 9, 40), _ny(2024, 12, 3, 9, 50)]
    assert wall.missed["recon"] == 0

    late = FakeClock(_ny(2024, 12, 3, 9, 30))
    seen: list[datetime] = []

    async def record(at: datetime) -> None:
        seen.append(at)

    async def oversleep(at: datetime) -> None:  # the machine was suspended for an hour
        late.advance_to(at + timedelta(hours=1))
        await asyncio.sleep(0)

    late.sleep_until = oversleep  # type: ignore[method-assign]
    trig = build_triggers(LiveConfig(recon_interval_s=60), late.now())
    stale = WallClock([Job("recon", trig["recon"], record, market_hours=True)], late)
    task = asyncio.create_task(stale.run())
    while stale.missed["recon"] < 2:
        await asyncio.sleep(0)
    stale.stop()
    await asyncio.wait_for(task, timeout=5)
    assert seen == []  # an hour late is past the misfire grace: skipped and counted
