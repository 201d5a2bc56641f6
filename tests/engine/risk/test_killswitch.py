from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qgtm.core.config import KILL_RESETS
from qgtm.core.enums import KillTier
from qgtm.core.types import RiskLimits
from qgtm.engine.risk.killswitch import (
    book_close,
    called_tier,
    escalate,
    tier_after,
    tier_after_close,
    tier_for,
)

LIMITS = RiskLimits(daily_loss_limit=0.04, max_drawdown_pct=0.20)
EQUITY = 1_000_000.0  # loss limit = 40,000


@pytest.mark.parametrize(
    ("daily_pnl", "expected"),
    [
        (-19_000, KillTier.NORMAL),
        (-21_000, KillTier.WARN),  # below -50% of the limit
        (-31_000, KillTier.THROTTLE),  # below -75%
        (-41_000, KillTier.NO_NEW),  # below -100%
    ],
)
def test_daily_loss_maps_to_the_tier_in_the_brief(daily_pnl, expected):
    assert tier_for(daily_pnl, EQUITY, drawdown=0.05, limits=LIMITS) is expected


def test_drawdown_beyond_the_limit_calls_for_flatten():
    assert tier_for(0.0, EQUITY, drawdown=0.21, limits=LIMITS) is KillTier.FLATTEN


def test_tiers_never_step_down_automatically():
    assert escalate(KillTier.THROTTLE, KillTier.NORMAL) is KillTier.THROTTLE
    assert escalate(KillTier.WARN, KillTier.NO_NEW) is KillTier.NO_NEW


def test_a_backtest_holds_tiers_or_lets_the_daily_ones_go() -> None:
    """hold: as escalate. daily: below FLATTEN the day's call alone (a THROTTLE day
    followed by a calm one is NORMAL again); FLATTEN holds either way."""
    assert tier_after_close(KillTier.THROTTLE, KillTier.NORMAL, "hold") is KillTier.THROTTLE
    assert tier_after_close(KillTier.THROTTLE, KillTier.NORMAL, "daily") is KillTier.NORMAL
    assert tier_after_close(KillTier.NO_NEW, KillTier.WARN, "daily") is KillTier.WARN
    assert tier_after_close(KillTier.WARN, KillTier.NO_NEW, "daily") is KillTier.NO_NEW
    assert tier_after_close(KillTier.FLATTEN, KillTier.NORMAL, "daily") is KillTier.FLATTEN
    assert tier_after_close(KillTier.WARN, KillTier.FLATTEN, "daily") is KillTier.FLATTEN
    with pytest.raises(ValueError, match="unknown kill reset 'weekly'"):
        tier_after_close(KillTier.WARN, KillTier.NORMAL, "weekly")


# ----- one close-of-day booking ------------------------------------------------------
money = st.decimals(
    min_value=Decimal("1"), max_value=Decimal("100000000"), places=4, allow_nan=False
)
tiers = st.sampled_from(list(KillTier))


@settings(deadline=None)
@given(tier=tiers, peak=money, before=money, equity=money, reset=st.sampled_from(KILL_RESETS))
def test_book_close_is_the_rules_the_runners_used_to_spell_out(
    tier: KillTier, peak: Decimal, before: Decimal, equity: Decimal, reset: str
) -> None:
    """peak = max(peak, equity); drawdown from it; tier_for on the day's P&L; then
    tier_after_close; FLATTEN reached exactly when the new tier is FLATTEN and the old
    one was not."""
    close = book_close(tier, peak, before, equity, LIMITS, reset)
    high = max(peak, equity)
    drawdown = float((high - equity) / high)
    called = tier_for(float(equity - before), float(before), drawdown, LIMITS)
    assert close.peak == high and close.drawdown == drawdown
    assert close.called_for is called
    assert close.tier is tier_after_close(tier, called, reset)
    assert close.flatten == (close.tier is KillTier.FLATTEN and tier is not KillTier.FLATTEN)


def test_a_drawdown_beyond_the_limit_flattens_once() -> None:
    first = book_close(
        KillTier.NORMAL, Decimal(1_000_000), Decimal(900_000), Decimal(790_000), LIMITS
    )
    again = book_close(first.tier, first.peak, Decimal(790_000), Decimal(780_000), LIMITS)
    assert first.tier is KillTier.FLATTEN and first.flatten
    assert again.tier is KillTier.FLATTEN and not again.flatten


ratios = st.floats(min_value=-2.0, max_value=2.0, allow_nan=False)


@settings(max_examples=300, deadline=None)  # the first call compiles
@given(
    pnl=st.floats(min_value=-1e8, max_value=1e8, allow_nan=False),
    before=st.floats(min_value=-1e8, max_value=1e9, allow_nan=False),
    drawdown=ratios,
    limits=st.tuples(ratios, ratios, ratios, ratios),
    current=st.integers(0, 4),
    daily=st.booleans(),
)
def test_the_kernel_books_the_kill_switch_with_the_same_rules_compiled(
    pnl: float,
    before: float,
    drawdown: float,
    limits: tuple[float, float, float, float],
    current: int,
    daily: bool,
) -> None:
    """backtest/kernel.py compiles killswitch.called_tier and tier_after with numba
    rather than keeping its own copy; compiled and pure answers are the same."""
    kernel = pytest.importorskip("qgtm.engine.backtest.kernel")
    called = called_tier(pnl, before, drawdown, *limits)
    assert kernel._called_tier(pnl, before, drawdown, *limits) == called
    assert kernel._tier_after(current, called, daily) == tier_after(current, called, daily)
