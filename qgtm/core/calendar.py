"""Trading calendar: XNYS sessions, early closes and the daily decision time.

exchange_calendars (and pandas under it) load on the first calendar question, not on
import: a terminal attached to a daemon needs NEW_YORK but never a session table."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import exchange_calendars as xcals

NEW_YORK = ZoneInfo("America/New_York")
REBALANCE_TIME = time(15, 30)
# exchange_calendars ships sessions for a bounded window; ask for a generous one once.
_CALENDAR_START = "2000-01-03"


@cache
def _xnys() -> xcals.ExchangeCalendar:
    import exchange_calendars

    return exchange_calendars.get_calendar("XNYS", start=_CALENDAR_START)


def _ts(day: date) -> Any:
    """`day` as the pandas Timestamp exchange_calendars takes."""
    import pandas

    return pandas.Timestamp(day)


def sessions(start: date, end: date) -> list[date]:
    """XNYS trading sessions from start to end inclusive."""
    labels = _xnys().sessions_in_range(_ts(start), _ts(end))
    return [ts.date() for ts in labels]


def is_session(day: date) -> bool:
    """True if XNYS trades on `day`."""
    return bool(_xnys().is_session(_ts(day)))


def session_close(day: date) -> datetime:
    """The session's close in New York time (13:00 on early-close days)."""
    close = _xnys().session_close(_ts(day))
    return close.tz_convert(NEW_YORK).to_pydatetime()


def session_open(day: date) -> datetime:
    """The session's open in New York time."""
    opening = _xnys().session_open(_ts(day))
    return opening.tz_convert(NEW_YORK).to_pydatetime()


def decision_time(day: date) -> datetime:
    """When the daily rebalance decides: 15:30 New York, or 30 minutes before an early close."""
    close = session_close(day)
    regular = datetime.combine(day, REBALANCE_TIME, tzinfo=NEW_YORK)
    return min(regular, close - timedelta(minutes=30))
