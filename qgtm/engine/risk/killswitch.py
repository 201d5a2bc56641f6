"""The tiered kill-switch: which tier the day's P&L and the drawdown call for.

Tiers only escalate automatically; stepping down needs an approved reset.
"""

from __future__ import annotations

from qgtm.core.config import KILL_RESETS
from qgtm.core.enums import KillTier
from qgtm.core.types import RiskLimits


def tier_for(
    daily_pnl: float, equity_before: float, drawdown: float, limits: RiskLimits
) -> KillTier:
    """The tier the numbers call for, ignoring the current tier.

    With L = daily_loss_limit * equity_before: P&L below -warn_fraction*L -> WARN,
    below -throttle_fraction*L -> THROTTLE, below -L -> NO_NEW; drawdown beyond
    max_drawdown_pct -> FLATTEN.
    """
    if drawdown > limits.max_drawdown_pct:
        return KillTier.FLATTEN
    if equity_before <= 0:
        return KillTier.NO_NEW
    loss_limit = limits.daily_loss_limit * equity_before
    if daily_pnl < -loss_limit:
        return KillTier.NO_NEW
    if daily_pnl < -limits.throttle_fraction * loss_limit:
        return KillTier.THROTTLE
    if daily_pnl < -limits.warn_fraction * loss_limit:
        return KillTier.WARN
    return KillTier.NORMAL


def escalate(current: KillTier, called_for: KillTier) -> KillTier:
    """Never step down automatically: the new tier is the higher of the two."""
    return max(current, called_for)


def tier_after_close(current: KillTier, called_for: KillTier, reset: str) -> KillTier:
    """A backtest's tier after a close. "hold": as the live engine with nobody to reset
    it (`escalate`: a tier holds to the end of the run). "daily": the daily-loss tiers
    (WARN, THROTTLE, NO_NEW) last one session, as if an operator reset them every
    morning after that session's decision: below FLATTEN the tier is what the day calls
    for; FLATTEN (the drawdown limit) still holds."""
    if reset not in KILL_RESETS:
        raise ValueError(f"unknown kill reset {reset!r}; use one of {', '.join(KILL_RESETS)}")
    if reset == "daily" and current < KillTier.FLATTEN:
        return called_for
    return escalate(current, called_for)
