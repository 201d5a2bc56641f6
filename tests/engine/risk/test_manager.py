from hypothesis import given
from hypothesis import strategies as st

from qgtm.core.enums import KillTier
from qgtm.core.types import RiskLimits
from qgtm.engine.risk.manager import check_targets

LIMITS = RiskLimits(max_position_weight=0.2, max_gross_leverage=1.0)


def test_position_above_the_cap_is_cut_to_the_cap_with_a_reason():
    approved, decisions = check_targets({"GLD": 0.35}, {}, KillTier.NORMAL, LIMITS)
    assert approved["GLD"] == 0.2
    assert decisions[0].reason == "position cap 20%"


def test_gross_leverage_above_the_cap_scales_every_weight():
    targets = {s: 0.2 for s in ("GLD", "SLV", "USO", "UNG", "DBA", "CPER")}  # gross 1.2
    approved, _ = check_targets(targets, {}, KillTier.NORMAL, LIMITS)
    assert abs(sum(abs(w) for w in approved.values()) - 1.0) < 1e-12


def test_throttle_halves_new_order_sizes():
    approved, _ = check_targets({"GLD": 0.10}, {"GLD": 0.02}, KillTier.THROTTLE, LIMITS)
    assert abs(approved["GLD"] - 0.06) < 1e-12


def test_no_new_blocks_new_positions_and_allows_reductions():
    approved, _ = check_targets(
        {"GLD": 0.1, "SLV": 0.05, "USO": -0.1}, {"SLV": 0.1, "USO": 0.1}, KillTier.NO_NEW, LIMITS
    )
    assert approved == {"GLD": 0.0, "SLV": 0.05, "USO": 0.0}


def test_flatten_targets_zero_everywhere():
    approved, _ = check_targets({"GLD": 0.1}, {"SLV": 0.1}, KillTier.FLATTEN, LIMITS)
    assert approved == {"GLD": 0.0, "SLV": 0.0}


weights = st.floats(min_value=-3, max_value=3, allow_nan=False)
books = st.dictionaries(st.sampled_from(["GLD", "SLV", "USO", "UNG", "DBA"]), weights)


@given(targets=books, current=books, tier=st.sampled_from(list(KillTier)))
def test_approved_weights_never_break_position_or_gross_limits(targets, current, tier):
    approved, _ = check_targets(targets, current, tier, LIMITS)
    assert all(abs(w) <= LIMITS.max_position_weight + 1e-12 for w in approved.values())
    assert sum(abs(w) for w in approved.values()) <= LIMITS.max_gross_leverage + 1e-9
