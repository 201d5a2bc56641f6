"""Time for the wall-clock daemon: the system clock, or a fake one tests drive.

Everything that asks "what time is it" or "wake me at t" in wall-clock mode goes through
a `Clock`, so a test can run a whole trading day (15:30 rebalance, recon, the 18:00 data
refresh) in milliseconds and stop time exactly where it wants to look.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Protocol

from qgtm.core.calendar import NEW_YORK

MAX_NAP_S = 30.0  # re-read the clock at least this often (suspend, NTP steps)


class Clock(Protocol):
    """Current time (tz-aware, New York) and a way to wait for a moment."""

    def now(self) -> datetime:
        """The current time."""
        ...

    async def sleep_until(self, at: datetime) -> None:
        """Return once `now() >= at`."""
        ...


class SystemClock:
    """The real clock; sleeps in naps of at most MAX_NAP_S so clock steps are noticed."""

    def now(self) -> datetime:
        """Wall-clock time in New York."""
        return datetime.now(NEW_YORK)

    async def sleep_until(self, at: datetime) -> None:
        """Sleep until `at` (returns at once if it has passed)."""
        while (left := (at - self.now()).total_seconds()) > 0:
            await asyncio.sleep(min(left, MAX_NAP_S))


class FakeClock:
    """A clock tests move: `sleep_until` jumps ahead instantly, up to `limit`.

    Time never passes on its own. `sleep_until(at)` sets now to `at` when `at <= limit`
    (no limit: always), otherwise it waits until the test raises the limit with
    `allow_until`. `waiting_for` tells the test which moment the sleeper wants next.
    """

    def __init__(self, start: datetime, limit: datetime | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a tz-aware start")
        self._now = start
        self.limit = limit
        self.waiting_for: datetime | None = None
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        """The fake time."""
        return self._now

    def allow_until(self, limit: datetime | None) -> None:
        """Let sleepers run up to `limit` (None: without limit). Call from the loop's thread."""
        self.limit = limit
        self._moved.set()

    def advance_to(self, at: datetime) -> None:
        """Set the time (never backwards)."""
        self._now = max(self._now, at)

    async def sleep_until(self, at: datetime) -> None:
        """Jump to `at` once the limit allows it."""
        self.waiting_for = at
        while self.limit is not None and at > self.limit:
            self._moved.clear()
            await self._moved.wait()
        self.waiting_for = None
        self.advance_to(at)
        await asyncio.sleep(0)
