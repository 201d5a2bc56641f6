import pytest

from qgtm.core.enums import KillTier
from qgtm.core.types import RiskLimits
from qgtm.engine.risk.killswitch import escalate, tier_after_close, tier_for

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
