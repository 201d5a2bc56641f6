"""When each source's numbers become public: the knowledge_time rules, in one place.

Business days here are US federal business days (Mon-Fri except the holidays of
pandas' USFederalHolidayCalendar), because CFTC and EIA are federal agencies.

* CFTC COT: positions as of Tuesday are released Friday 15:30 ET of the same week.
  If that Friday is a federal holiday, the release moves to the next federal business
  day, 15:30 ET (CFTC's published schedule shifts holiday weeks the same way).
* EIA Weekly Petroleum Status Report (crude stocks, week ending Friday): Wednesday
  10:30 ET after the week. Weekly Natural Gas Storage Report (week ending Friday):
  Thursday 10:30 ET. A federal holiday on any weekday from Monday to the release day
  delays the release by one business day; a delayed release is stamped 12:00 ET
  (EIA then publishes at 11:00 or 12:00; the later time never lets a strategy see early).
* FRED/ALFRED vintages carry a realtime_start *date*, not a time. A vintage may have
  been posted late in that day, so it counts as known at 00:00 ET the next day.
* LBMA auctions (gold PM 15:00 London, silver 12:00 London): the free JSON price files
  are delayed to midnight London time, so a day's price is known from 00:00 London the
  next day (subscribers to the live feed would know it ~30 minutes after the auction).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
UTC = ZoneInfo("UTC")

COT_RELEASE = time(15, 30)
EIA_RELEASE = time(10, 30)
EIA_DELAYED_RELEASE = time(12, 0)


@cache
def _federal_holidays(year: int) -> frozenset[date]:
    from pandas.tseries.holiday import USFederalHolidayCalendar

    days = USFederalHolidayCalendar().holidays(f"{year - 1}-12-01", f"{year + 1}-01-31")
    return frozenset(d.date() for d in days)


def is_federal_business_day(day: date) -> bool:
    """Mon-Fri and not a US federal holiday."""
    return day.weekday() < 5 and day not in _federal_holidays(day.year)


def next_federal_business_day(day: date) -> date:
    """`day` itself if it is a business day, else the next one."""
    while not is_federal_business_day(day):
        day += timedelta(days=1)
    return day


def _utc(day: date, at: time, zone: ZoneInfo = NEW_YORK) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def cot_release(as_of: date) -> datetime:
    """UTC release instant of the COT report with positions as of `as_of` (a Tuesday)."""
    friday = as_of + timedelta(days=(4 - as_of.weekday()) % 7)
    return _utc(next_federal_business_day(friday), COT_RELEASE)


def eia_release(week_ending: date, weekday: int) -> datetime:
    """UTC release of a weekly EIA report for the week ending `week_ending` (a Friday).

    `weekday` is the regular release day (2 = Wednesday crude, 3 = Thursday gas).
    """
    monday = week_ending + timedelta(days=(7 - week_ending.weekday()) % 7 or 7)
    regular = monday + timedelta(days=weekday)
    holidays = [monday + timedelta(days=i) for i in range(weekday + 1)]
    if all(is_federal_business_day(d) for d in holidays):
        return _utc(regular, EIA_RELEASE)
    return _utc(next_federal_business_day(regular + timedelta(days=1)), EIA_DELAYED_RELEASE)


def fred_knowledge(realtime_start: date) -> datetime:
    """A FRED vintage counts as known from 00:00 ET the day after its realtime_start."""
    return _utc(realtime_start + timedelta(days=1), time(0, 0))


def lbma_knowledge(day: date) -> datetime:
    """LBMA price of `day` in the free files: 00:00 London on the next day."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=LONDON).astimezone(UTC)
