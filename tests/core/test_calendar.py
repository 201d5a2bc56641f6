from datetime import date, time

from qgtm.core import calendar


def test_holidays_and_weekends_are_not_sessions():
    assert not calendar.is_session(date(2024, 12, 25))
    assert not calendar.is_session(date(2024, 11, 30))
    assert calendar.is_session(date(2024, 11, 29))


def test_decision_time_is_1530_new_york_on_a_normal_day():
    assert calendar.decision_time(date(2024, 11, 27)).time() == time(15, 30)


def test_decision_time_moves_before_an_early_close():
    # The day after Thanksgiving closes at 13:00.
    assert calendar.decision_time(date(2024, 11, 29)).time() == time(12, 30)
