"""When each source's numbers become public: the knowledge_time rules, in one place.

Business days here are US federal business days: Mon-Fri except the federal holidays
of pandas' USFederalHolidayCalendar (5 U.S.C. 6103, observed dates; Juneteenth from
2021) and the whole-day closures of executive departments by executive order listed in
EXECUTIVE_ORDER_CLOSURES. CFTC and EIA are federal agencies and follow that calendar,
not the exchange's (CFTC publishes on Good Friday, when XNYS is closed).

* CFTC COT (CFTC, "Commitments of Traders: Release Schedule",
  https://www.cftc.gov/MarketReports/CommitmentsofTraders/ReleaseSchedule/index.htm):
  positions as of Tuesday are released Friday 15:30 ET of the same week. When a federal
  holiday falls on the Wednesday, Thursday or Friday of that week, the release moves to
  the next federal business day after the Friday, 15:30 ET. The published 2024 schedule
  marks exactly these as delayed: Mon Jun 24 (Juneteenth, Wed), Mon Jul 8 (Independence
  Day, Thu), Mon Dec 2 (Thanksgiving, Thu), Mon Dec 30 (Christmas, Wed); weeks with a
  Monday holiday (Jan 15, Feb 19, May 27, Sep 2, Oct 14, Nov 11) release on the Friday.
  The 2025 schedule does the same (Dec 1 after Thanksgiving, Dec 29 after Christmas,
  Jan 5 2026 after New Year's Day). A Tuesday holiday moves the as-of date to Monday
  (the file then carries the Monday date; the Friday release is unchanged).
* EIA Weekly Petroleum Status Report (crude stocks, week ending Friday): normally
  Wednesday 10:30 ET, i.e. the third federal business day of the following week. A
  federal holiday on Monday-Wednesday slips it a day, to the third business day, at
  11:00 ET: EIA releases the WPSR after the gas report when both fall on the Thursday
  (EIA press release, 2 June 2008, "EIA Strengthens Process for Public Release of
  Weekly Petroleum and Natural Gas Data"); Juneteenth 2023 (Monday) moved it to
  Thursday 22 June (Bloomberg, 21 June 2023).
* EIA Weekly Natural Gas Storage Report (week ending Friday): normally Thursday 10:30
  ET. When the Thursday is a federal holiday it comes out the business day before,
  at 12:00 ET (Thanksgiving: Wednesday noon, Platts, 24 Nov 2015; ir.eia.gov/ngs lists
  the release after Nov 21 2024 as Wednesday Nov 27 2024). When the Wednesday is a
  federal holiday it moves to the Friday (New Year's Day 2025, a Wednesday: the week
  ending 27 Dec 2024 was published Friday 3 Jan 2025); we stamp such a delayed
  release 12:00 ET, the later of EIA's usual delayed times, so a strategy never sees it
  early. A Monday or Tuesday holiday leaves it on Thursday 10:30.
* FRED/ALFRED vintages carry a realtime_start *date*, not a time; the date is the
  day the vintage was actually posted, so holidays are already in it. A vintage may
  have been posted late in that day, so it counts as known at 00:00 ET the next day.
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
WPSR_DELAYED_RELEASE = time(11, 0)
EIA_DELAYED_RELEASE = time(12, 0)
WPSR_WEEKDAY = 2
WNGSR_WEEKDAY = 3

EXECUTIVE_ORDER_CLOSURES: frozenset[date] = frozenset(
    {
        date(2018, 12, 5),  # national day of mourning, President G. H. W. Bush
        date(2018, 12, 24),  # Christmas Eve
        date(2019, 12, 24),  # Christmas Eve
        date(2020, 12, 24),  # Christmas Eve
        date(2024, 12, 24),  # Christmas Eve
        date(2025, 1, 9),  # national day of mourning, President Carter
    }
)
"""Weekdays on which executive departments were closed by executive order."""


@cache
def _federal_holidays(year: int) -> frozenset[date]:
    from pandas.tseries.holiday import USFederalHolidayCalendar

    days = USFederalHolidayCalendar().holidays(f"{year - 1}-12-01", f"{year + 1}-01-31")
    return frozenset(d.date() for d in days) | EXECUTIVE_ORDER_CLOSURES


def is_federal_business_day(day: date) -> bool:
    """Mon-Fri, not a US federal holiday and not an executive-order closure."""
    return day.weekday() < 5 and day not in _federal_holidays(day.year)


def next_federal_business_day(day: date) -> date:
    """`day` itself if it is a business day, else the next one."""
    while not is_federal_business_day(day):
        day += timedelta(days=1)
    return day


def previous_federal_business_day(day: date) -> date:
    """`day` itself if it is a business day, else the one before."""
    while not is_federal_business_day(day):
        day -= timedelta(days=1)
    return day


def _utc(day: date, at: time, zone: ZoneInfo = NEW_YORK) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def cot_release(as_of: date) -> datetime:
    """UTC release instant of the COT report with positions as of `as_of` (a Tuesday,
    or the Monday when Tuesday was a holiday): Friday 15:30 ET, or the next federal
    business day after that Friday when a holiday falls on its Wednesday-Friday."""
    friday = as_of + timedelta(days=(4 - as_of.weekday()) % 7)
    compile_days = [friday - timedelta(days=i) for i in range(3)]  # Wed, Thu, Fri
    if all(is_federal_business_day(d) for d in compile_days):
        return _utc(friday, COT_RELEASE)
    return _utc(next_federal_business_day(friday + timedelta(days=1)), COT_RELEASE)


def _week_after(week_ending: date) -> date:
    """The Monday after the report week ending `week_ending` (a Friday)."""
    return week_ending + timedelta(days=(7 - week_ending.weekday()) % 7 or 7)


def wpsr_release(week_ending: date) -> datetime:
    """UTC release of the Weekly Petroleum Status Report for the week ending `week_ending`:
    the third federal business day of the next week, 10:30 ET on a Wednesday, else 11:00."""
    day = _week_after(week_ending) - timedelta(days=1)
    for _ in range(3):
        day = next_federal_business_day(day + timedelta(days=1))
    regular = day.weekday() == WPSR_WEEKDAY
    return _utc(day, EIA_RELEASE if regular else WPSR_DELAYED_RELEASE)


def wngsr_release(week_ending: date) -> datetime:
    """UTC release of the Weekly Natural Gas Storage Report for the week ending
    `week_ending`: Thursday 10:30 ET; the business day before at 12:00 when Thursday is a
    holiday; the Friday (next business day) at 12:00 when Wednesday is a holiday."""
    monday = _week_after(week_ending)
    wednesday, thursday = monday + timedelta(days=2), monday + timedelta(days=3)
    if not is_federal_business_day(thursday):
        return _utc(previous_federal_business_day(thursday), EIA_DELAYED_RELEASE)
    if not is_federal_business_day(wednesday):
        return _utc(next_federal_business_day(thursday + timedelta(days=1)), EIA_DELAYED_RELEASE)
    return _utc(thursday, EIA_RELEASE)


def eia_release(week_ending: date, weekday: int) -> datetime:
    """UTC release of a weekly EIA report for the week ending `week_ending` (a Friday).

    `weekday` is the regular release day: 2 = Wednesday (WPSR, crude), 3 = Thursday
    (WNGSR, natural gas storage).
    """
    if weekday == WPSR_WEEKDAY:
        return wpsr_release(week_ending)
    if weekday == WNGSR_WEEKDAY:
        return wngsr_release(week_ending)
    raise ValueError(f"no EIA weekly release rule for weekday {weekday}")


def fred_knowledge(realtime_start: date) -> datetime:
    """A FRED vintage counts as known from 00:00 ET the day after its realtime_start."""
    return _utc(realtime_start + timedelta(days=1), time(0, 0))


def lbma_knowledge(day: date) -> datetime:
    """LBMA price of `day` in the free files: 00:00 London on the next day."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=LONDON).astimezone(UTC)
