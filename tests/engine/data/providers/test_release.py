"""Release-time rules on holiday-shifted weeks, against hand-worked knowledge times.

Expected instants are worked out by hand from the published schedules cited in
qgtm.engine.data.providers.release (CFTC COT release schedules 2024/2025; EIA's WPSR
and WNGSR holiday practice). New York is UTC-4 in summer (EDT), UTC-5 in winter (EST).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from qgtm.engine.data.providers.release import (
    cot_release,
    eia_release,
    fred_knowledge,
    is_federal_business_day,
    wngsr_release,
    wpsr_release,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("as_of", "expected", "why"),
    [
        (date(2024, 6, 4), utc(2024, 6, 7, 19, 30), "regular Friday 15:30 EDT"),
        (date(2024, 1, 16), utc(2024, 1, 19, 20, 30), "Monday MLK holiday: no delay"),
        (date(2024, 11, 12), utc(2024, 11, 15, 20, 30), "Monday Veterans Day: no delay"),
        (date(2024, 3, 26), utc(2024, 3, 29, 19, 30), "Good Friday: XNYS shut, CFTC open"),
        (date(2024, 6, 18), utc(2024, 6, 24, 19, 30), "Juneteenth Wednesday -> Monday"),
        (date(2024, 7, 2), utc(2024, 7, 8, 19, 30), "July 4th Thursday -> Monday"),
        (date(2024, 11, 26), utc(2024, 12, 2, 20, 30), "Thanksgiving -> Monday 15:30 EST"),
        (date(2024, 12, 23), utc(2024, 12, 30, 20, 30), "Christmas Wednesday -> Monday"),
        (date(2025, 11, 25), utc(2025, 12, 1, 20, 30), "Thanksgiving 2025 -> Monday"),
        (date(2025, 12, 23), utc(2025, 12, 29, 20, 30), "Christmas Thursday 2025 -> Monday"),
        (date(2025, 12, 30), utc(2026, 1, 5, 20, 30), "New Year Thursday 2026 -> Monday"),
        (date(2021, 12, 21), utc(2021, 12, 27, 20, 30), "Christmas observed Friday -> Monday"),
    ],
)
def test_cot_release_on_shifted_weeks(as_of, expected, why):
    assert cot_release(as_of) == expected, why


@pytest.mark.parametrize(
    ("week_ending", "expected", "why"),
    [
        (date(2024, 11, 15), utc(2024, 11, 20, 15, 30), "regular Wednesday 10:30 EST"),
        (date(2024, 11, 22), utc(2024, 11, 27, 15, 30), "Thanksgiving week: Wednesday as usual"),
        (date(2024, 6, 28), utc(2024, 7, 3, 14, 30), "July 4th Thursday: Wednesday as usual"),
        (date(2023, 6, 16), utc(2023, 6, 22, 15, 0), "Juneteenth Monday -> Thursday 11:00 EDT"),
        (date(2024, 8, 30), utc(2024, 9, 5, 15, 0), "Labor Day -> Thursday 11:00 EDT"),
        (date(2024, 12, 27), utc(2025, 1, 2, 16, 0), "New Year Wednesday -> Thursday 11:00"),
    ],
)
def test_weekly_petroleum_status_report_on_shifted_weeks(week_ending, expected, why):
    assert wpsr_release(week_ending) == expected, why
    assert eia_release(week_ending, 2) == expected


@pytest.mark.parametrize(
    ("week_ending", "expected", "why"),
    [
        (date(2024, 11, 15), utc(2024, 11, 21, 15, 30), "regular Thursday 10:30 EST"),
        (date(2024, 11, 22), utc(2024, 11, 27, 17, 0), "Thanksgiving -> Wednesday 12:00 EST"),
        (date(2024, 6, 28), utc(2024, 7, 3, 16, 0), "July 4th Thursday -> Wednesday 12:00 EDT"),
        (date(2024, 12, 27), utc(2025, 1, 3, 17, 0), "New Year Wednesday -> Friday 12:00 EST"),
        (date(2024, 8, 30), utc(2024, 9, 5, 14, 30), "Labor Day Monday: Thursday as usual"),
    ],
)
def test_weekly_natural_gas_storage_report_on_shifted_weeks(week_ending, expected, why):
    assert wngsr_release(week_ending) == expected, why
    assert eia_release(week_ending, 3) == expected


def test_federal_calendar_has_observed_holidays_and_executive_order_closures():
    assert not is_federal_business_day(date(2023, 11, 10))  # Veterans Day observed (Sat 11th)
    assert not is_federal_business_day(date(2025, 1, 9))  # day of mourning, President Carter
    assert not is_federal_business_day(date(2024, 12, 24))  # Christmas Eve by executive order
    assert is_federal_business_day(date(2024, 3, 29))  # Good Friday is not a federal holiday


def test_eia_weekday_without_a_rule_is_refused():
    with pytest.raises(ValueError, match="weekday 4"):
        eia_release(date(2024, 11, 15), 4)


def test_fred_vintage_is_known_from_midnight_new_york_after_its_realtime_start():
    assert fred_knowledge(date(2024, 7, 3)) == utc(2024, 7, 4, 4, 0)  # EDT
    assert fred_knowledge(date(2024, 12, 31)) == utc(2025, 1, 1, 5, 0)  # EST
