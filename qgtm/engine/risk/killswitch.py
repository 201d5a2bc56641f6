"""The tiered kill-switch: which tier the day's P&L and the drawdown call for.

Tiers only escalate automatically; stepping down needs an approved reset (a backtest may
instead let the daily-loss tiers go each session: `tier_after_close` with "daily").

`book_close` is the one close-of-day booking (peak, drawdown, the tier called for, the
new tier, whether FLATTEN was reached): the live RiskManager and both backtest runners
call it. Its two rules, `called_tier` and `tier_after`, work on plain floats and ints so
that the compiled booking pass (backtest/kernel.py) compiles these same functions with
numba instead of keeping a copy of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from qgtm.core.config import KILL_RESETS
from qgtm.core.enums import KillTier
from qgtm.core.types import RiskLimits

# plain ints, so numba compiles the rules below unchanged (KillTier values)
NORMAL, WARN, THROTTLE, NO_NEW, FLATTEN = (
    int(KillTier.NORMAL),
    int(KillTier.WARN),
    int(KillTier.THROTTLE),
    int(KillTier.NO_NEW),
    int(KillTier.FLATTEN),
)


def called_tier(
    daily_pnl: float,
    equity_before: float,
    drawdown: float,
    max_drawdown_pct: float,
    daily_loss_limit: float,
    warn_fraction: float,
    throttle_fraction: float,
) -> int:
    """`tier_for` over plain numbers (the KillTier value); compiled as is by the kernel."""
    if drawdown > max_drawdown_pct:
        return FLATTEN
    if equity_before <= 0:
        return NO_NEW
    loss_limit = daily_loss_limit * equity_before
    if daily_pnl < -loss_limit:
        return NO_NEW
    if daily_pnl < -throttle_fraction * loss_limit:
        return THROTTLE
    if daily_pnl < -warn_fraction * loss_limit:
        return WARN
    return NORMAL


def tier_after(current: int, called_for: int, daily: bool) -> int:
    """`tier_after_close` over KillTier values (daily: the "daily" reset); compiled as is
    by the kernel."""
    if daily and current < FLATTEN:
        return called_for
    return max(current, called_for)


def tier_for(
    daily_pnl: float, equity_before: float, drawdown: float, limits: RiskLimits
) -> KillTier:
    """The tier the numbers call for, ignoring the current tier.

    With L = daily_loss_limit * equity_before: P&L below -warn_fraction*L -> WARN,
    below -throttle_fraction*L -> THROTTLE, below -L -> NO_NEW; drawdown beyond
    max_drawdown_pct -> FLATTEN.
    """
    return KillTier(
        called_tier(
            daily_pnl,
            equity_before,
            drawdown,
            limits.max_drawdown_pct,
            limits.daily_loss_limit,
            limits.warn_fraction,
            limits.throttle_fraction,
        )
    )


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
    return KillTier(tier_after(int(current), int(called_for), reset == "daily"))


@dataclass(frozen=True, slots=True)
class CloseOfDay:
    """What one close does to the kill switch."""

    peak: Decimal  # the equity peak, this close included
    drawdown: float  # (peak - equity) / peak
    daily_pnl: Decimal  # equity - equity_before
    called_for: KillTier  # what the day's numbers call for (tier_for)
    before: KillTier  # the tier in force during the session
    tier: KillTier  # the tier after the close

    @property
    def flatten(self) -> bool:
        """True when this close moved the book into FLATTEN (liquidate now)."""
        return self.tier >= KillTier.FLATTEN > self.before


def book_close(
    tier: KillTier,
    peak: Decimal,
    equity_before: Decimal,
    equity: Decimal,
    limits: RiskLimits,
    reset: str = "hold",
) -> CloseOfDay:
    """The kill switch at a close: peak = max(peak, equity); drawdown = (peak - equity) /
    peak (0 when peak <= 0); the tier the day's P&L (equity - equity_before) and the
    drawdown call for; the new tier under `reset` ("hold": escalate only, as live)."""
    peak = max(peak, equity)
    drawdown = float((peak - equity) / peak) if peak > 0 else 0.0
    daily_pnl = equity - equity_before
    called_for = tier_for(float(daily_pnl), float(equity_before), drawdown, limits)
    return CloseOfDay(
        peak, drawdown, daily_pnl, called_for, tier, tier_after_close(tier, called_for, reset)
    )
