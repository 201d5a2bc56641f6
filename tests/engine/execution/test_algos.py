from hypothesis import given
from hypothesis import strategies as st

from qgtm.engine.execution.algos import (
    INTRADAY_VOLUME_CURVE,
    Algo,
    participation_capped,
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
