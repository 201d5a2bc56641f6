"""The daemon's jobs and the two clocks that fire them.

One set of job definitions (name + APScheduler trigger + coroutine):
  rebalance     every XNYS session at decision_time (15:30 New York, 30 min before an
                early close)                                  XnysDecisionTrigger
  recon         every `live.recon_interval_s` seconds          IntervalTrigger
  data_refresh  on `live.data_refresh_cron` (New York time)    CronTrigger
  algo          wall clock with an external venue only: when the OMS next releases a
                sliced parent's child or ends its window          AlgoTrigger

`WallClock` fires them on a `Clock` (live mode: the system clock; tests: a fake one).
`ReplayClock` drives the same triggers on simulated time (demo mode): it asks each
trigger for its next fire time, advances the simulated clock to the earliest one and
runs that job. In a daily replay nothing changes between a session's close and the next
open, so jobs marked `market_hours` skip the closed hours: their fire times that fall
outside a session coalesce into one run at the next open (APScheduler's `coalesce`).
Recon every 60 s therefore means once per simulated minute of every trading session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from qgtm.core import calendar
from qgtm.core.calendar import NEW_YORK
from qgtm.core.config import LiveConfig
from qgtm.engine.live.clock import Clock

log = logging.getLogger(__name__)

JobFunc = Callable[[datetime], Awaitable[None]]
_LOOKAHEAD_DAYS = 15


@lru_cache(maxsize=64)  # the clock only moves forward: a few days suffice
def _session_hours(day: date) -> tuple[datetime, datetime] | None:
    if not calendar.is_session(day):
        return None
    return calendar.session_open(day), calendar.session_close(day)


@lru_cache(maxsize=64)  # the clock only moves forward: a few days suffice
def _decision(day: date) -> datetime | None:
    return calendar.decision_time(day) if calendar.is_session(day) else None


class XnysDecisionTrigger(BaseTrigger):
    """Fires once per XNYS session at `calendar.decision_time` (early closes respected)."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first decision time strictly after the previous fire and not before `now`."""
        start = now
        if previous_fire_time is not None:
            start = max(now, previous_fire_time + timedelta(microseconds=1))
        day = start.astimezone(NEW_YORK).date()
        for offset in range(_LOOKAHEAD_DAYS):
            at = _decision(day + timedelta(days=offset))
            if at is not None and at >= start:
                return at
        return None

    def __str__(self) -> str:
        return "xnys-decision"


class AlgoTrigger(BaseTrigger):
    """Fires when the OMS next has algo work: a child release or a window end.

    `next_wakeup(now)` is `OrderManager.next_wakeup`; with nothing working it looks again
    after `idle`. Always strictly after `now`, so a run never re-fires itself at once.
    """

    def __init__(
        self,
        next_wakeup: Callable[[datetime], datetime | None],
        idle: timedelta = timedelta(seconds=60),
    ) -> None:
        self.next_wakeup = next_wakeup
        self.idle = idle

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The OMS's next wake-up, at least a second after `now`."""
        wake = self.next_wakeup(now)
        soonest = now + timedelta(seconds=1)
        return now + self.idle if wake is None else max(wake, soonest)

    def __str__(self) -> str:
        return "oms-algo"


@dataclass(frozen=True, slots=True)
class Job:
    """One scheduled job: the same definition runs on the wall clock and the replay clock."""

    name: str
    trigger: BaseTrigger
    func: JobFunc
    market_hours: bool = False  # replay: skip closed hours (coalesce to the next open)


def build_triggers(live: LiveConfig, start: datetime) -> dict[str, BaseTrigger]:
    """The daemon's triggers; interval jobs count from `start`."""
    return {
        "rebalance": XnysDecisionTrigger(),
        "recon": IntervalTrigger(
            seconds=max(live.recon_interval_s, 0.01), start_date=start, timezone=NEW_YORK
        ),
        "data_refresh": CronTrigger.from_crontab(live.data_refresh_cron, timezone=NEW_YORK),
    }


class WallClock:
    """Live mode: fires the jobs on a `Clock` (the system clock, or a fake one in tests).

    The same APScheduler triggers as the replay clock decide when each job is due; this
    loop sleeps until the earliest, runs it, and asks the trigger for its next time after
    *now*, so runs missed while the daemon was down or busy coalesce into one (APScheduler's
    `coalesce=True`). A job more than `misfire_grace_s` late is skipped, except the
    rebalance, which the engine itself refuses to run twice or after the close. Jobs run
    one at a time, in time order.
    """

    def __init__(self, jobs: list[Job], clock: Clock, misfire_grace_s: float = 300.0) -> None:
        self.jobs = jobs
        self.clock = clock
        self.misfire_grace_s = misfire_grace_s
        self.fired: dict[str, int] = {j.name: 0 for j in jobs}
        self.missed: dict[str, int] = {j.name: 0 for j in jobs}
        self._stopped = False
        now = clock.now()
        self._next: dict[str, datetime | None] = {j.name: _next_time(j, None, now) for j in jobs}

    def stop(self) -> None:
        """Finish after the job in progress."""
        self._stopped = True

    def next_fire_times(self) -> dict[str, datetime | None]:
        """When each job fires next."""
        return dict(self._next)

    async def run(self) -> None:
        """Fire jobs on the clock until stopped (or no job has a next fire time)."""
        while not self._stopped:
            pending = [(at, i) for i, j in enumerate(self.jobs) if (at := self._next[j.name])]
            if not pending:
                return
            at, i = min(pending)
            job = self.jobs[i]
            await self.clock.sleep_until(at)
            if self._stopped:
                return
            late = (self.clock.now() - at).total_seconds()
            if late > self.misfire_grace_s and job.name != "rebalance":
                self.missed[job.name] += 1
                log.warning("event=job_misfired job=%s at=%s late_s=%.0f", job.name, at, late)
            else:
                await job.func(at)
                self.fired[job.name] += 1
            self._next[job.name] = _coalesced(job, at, self.clock.now())


def _coalesced(job: Job, previous: datetime, now: datetime) -> datetime | None:
    """The job's next fire time after `previous`; fire times already past `now` collapse
    into the latest of them (one catch-up run, like APScheduler's coalesce)."""
    at = _next_time(job, previous, now)
    due = None
    for _ in range(100_000):
        if at is None or at > now:
            break
        due, at = at, _next_time(job, at, now)
    else:  # pragma: no cover - a tiny interval over a very long outage
        return _next_time(job, None, now)
    return due or at


def _next_time(job: Job, previous: datetime | None, now: datetime) -> datetime | None:
    at = job.trigger.get_next_fire_time(previous, now)
    if at is None or not job.market_hours:
        return at
    return _within_session(at)


class ReplayClock:
    """Demo mode: fires the jobs in simulated-time order as fast as the pacer allows.

    `pace(job, at)` is awaited before each job runs (the daemon uses it for the replay
    speed and pause); `stop()` ends `run` after the current job. `end` bounds simulated time.
    """

    def __init__(
        self,
        jobs: list[Job],
        start: datetime,
        end: datetime | None = None,
        pace: Callable[[Job, datetime], Awaitable[None]] | None = None,
        yield_every: int = 64,
    ) -> None:
        self.jobs = jobs
        self.now = start
        self.end = end
        self.pace = pace
        self.fired: dict[str, int] = {j.name: 0 for j in jobs}
        self._stopped = False
        self._yield_every = yield_every
        self._next: dict[str, datetime | None] = {
            j.name: self._next_time(j, None, start) for j in jobs
        }

    def stop(self) -> None:
        """Finish after the job in progress."""
        self._stopped = True

    def _next_time(self, job: Job, previous: datetime | None, now: datetime) -> datetime | None:
        return _next_time(job, previous, now)

    def peek(self) -> tuple[Job, datetime] | None:
        """The next job to fire and when, without firing it."""
        pending = [(at, i) for i, j in enumerate(self.jobs) if (at := self._next[j.name])]
        if not pending:
            return None
        at, i = min(pending)
        if self.end is not None and at > self.end:
            return None
        return self.jobs[i], at

    async def run(self, max_fires: int | None = None) -> int:
        """Fire jobs in time order until stopped, out of fire times, or `max_fires`."""
        fires = 0
        while not self._stopped and (max_fires is None or fires < max_fires):
            nxt = self.peek()
            if nxt is None:
                break
            job, at = nxt
            if self.pace is not None:
                await self.pace(job, at)
                if self._stopped:
                    break
            self.now = at
            await job.func(at)
            self.fired[job.name] += 1
            fires += 1
            self._next[job.name] = self._next_time(job, at, at)
            if fires % self._yield_every == 0:
                await asyncio.sleep(0)
        return fires


def _within_session(at: datetime) -> datetime | None:
    """`at` if a session is open then, else the next session's open (coalesced)."""
    day = at.astimezone(NEW_YORK).date()
    for offset in range(_LOOKAHEAD_DAYS):
        hours = _session_hours(day + timedelta(days=offset))
        if hours is None:
            continue
        opening, closing = hours
        if at <= opening:
            return opening
        if at < closing:
            return at
    return None
