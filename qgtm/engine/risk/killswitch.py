"""The tiered kill-switch: which tier the day's P&L and the drawdown call for.

Tiers only escalate automatically; stepping down needs an approved reset.
"""

from __future__ import annotations

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
