from datetime import UTC, date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from qgtm.core import calendar
from qgtm.engine.execution.algos import (
    INTRADAY_VOLUME_CURVE,
    Algo,
    child_quantities,
    execution_window,
    participation_capped,
    plan_children,
    schedule,
    select_algo,
)


def test_algo_is_chosen_by_share_of_average_daily_volume():
    assert select_algo(10_000, 1_000_000) is Algo.MARKET  # 1.0% exactly: not above
    assert select_algo(10_001, 1_000_000) is Algo.VWAP
    assert select_algo(50_001, 1_000_000) is Algo.TWAP
    assert select_algo(100, 0) is Algo.TWAP


def test_thresholds_come_from_the_caller():
    assert select_algo(300, 10_000, vwap_adv_fraction=0.02, twap_adv_fraction=0.5) is Algo.VWAP


def test_vwap_slices_follow_the_u_shaped_volume_curve():
    slices = schedule(Algo.VWAP, 10_000)
    assert sum(slices) == 10_000
    assert slices[0] > slices[6] < slices[-1]
    assert abs(slices[-1] / 10_000 - INTRADAY_VOLUME_CURVE[-1]) < 1e-3


def test_twap_slices_are_equal_to_within_a_share():
    slices = schedule(Algo.TWAP, 1_000)
    assert sum(slices) == 1_000
    assert max(slices) - min(slices) <= 1


@given(st.sampled_from(list(Algo)), st.integers(1, 10_000_000))
def test_every_schedule_sums_to_the_parent_quantity(algo, quantity):
    assert sum(schedule(algo, quantity)) == quantity


def test_participation_cap_carries_excess_forward_and_reports_the_remainder():
    executed, remainder = participation_capped([100, 100, 100], [500, 2_000, 500], cap=0.1)
    assert executed == [50, 150, 50]
    assert remainder == 50


# ----- the wall-clock plan (one schedule, two clocks) ---------------------------------
HALF_HOUR = timedelta(minutes=30)


def test_the_paper_and_the_live_clock_share_one_schedule():
    volumes = [w * 200_000 for w in INTRADAY_VOLUME_CURVE]
    assert child_quantities(Algo.VWAP, 9_000, volumes, 0.1) == participation_capped(
        schedule(Algo.VWAP, 9_000), volumes, 0.1
    )
    plan = plan_children(
        Algo.VWAP, 9_000, calendar.session_close(date(2024, 3, 5)), adv=200_000, cap=0.1
    )
    executed, remainder = child_quantities(Algo.VWAP, 9_000, volumes, 0.1)
    assert [c.quantity for c in plan.children] == [q for q in executed if q]
    assert plan.capped_remainder == remainder


def test_a_decision_after_the_close_works_through_the_whole_next_session():
    opens = calendar.session_open(date(2024, 3, 6))
    plan = plan_children(
        Algo.TWAP, 1_300, calendar.session_close(date(2024, 3, 5)), adv=None, cap=0.1
    )
    assert (plan.window_start, plan.window_end) == (opens, calendar.session_close(date(2024, 3, 6)))
    assert [c.release_at for c in plan.children] == [opens + i * HALF_HOUR for i in range(13)]
    assert [c.quantity for c in plan.children] == [100] * 13
    assert [c.slice_no for c in plan.children] == list(range(1, 14))


def test_a_decision_inside_the_session_works_the_rest_of_it_from_its_bucket():
    opens = calendar.session_open(date(2024, 3, 6))
    at = opens + timedelta(hours=4, minutes=10)  # 13:40 New York: bucket 8 of 13
    start, end, first = execution_window(at)
    assert (start, end, first) == (at, calendar.session_close(date(2024, 3, 6)), 8)
    plan = plan_children(Algo.VWAP, 1_000, at, adv=None, cap=0.1)
    assert plan.children[0].release_at == at  # the first child goes at once
    assert [c.release_at for c in plan.children[1:]] == [
        opens + i * HALF_HOUR for i in range(9, 13)
    ]
    weights = INTRADAY_VOLUME_CURVE[8:]
    assert [c.quantity for c in plan.children] == schedule(
        Algo.VWAP, 1_000, [w / sum(weights) for w in weights]
    )


def test_too_little_left_of_the_session_moves_the_window_to_the_next_one():
    late = calendar.session_close(date(2024, 3, 6)) - timedelta(minutes=45)
    assert execution_window(late)[0] == calendar.session_open(date(2024, 3, 7))
    saturday = datetime(2024, 3, 9, 15, 0, tzinfo=UTC)
    assert execution_window(saturday)[0] == calendar.session_open(date(2024, 3, 11))


def test_an_early_close_has_fewer_buckets():
    day = date(2024, 11, 29)  # the day after Thanksgiving closes at 13:00
    plan = plan_children(Algo.TWAP, 700, calendar.session_open(day), adv=None, cap=0.1)
    assert plan.window_end == calendar.session_close(day)
    assert len(plan.children) == 7
    assert plan.children[-1].release_at == calendar.session_open(day) + 6 * HALF_HOUR


def test_a_naive_time_is_read_as_utc():
    naive = datetime(2024, 3, 6, 12, 0)  # 07:00 New York: before the open
    assert execution_window(naive)[0] == calendar.session_open(date(2024, 3, 6))
