"""Pre-trade risk: cut or block target weights so the book stays inside its limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from qgtm.core.enums import KillTier
from qgtm.core.types import RiskLimits


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """What a check did to one symbol's target weight, and why."""

    symbol: str
    requested: float
    approved: float
    reason: str


def _reduces(current: float, target: float) -> bool:
    """True if moving from current to target only shrinks the position (same side or flat)."""
    if target == 0:
        return True
    return current * target > 0 and abs(target) <= abs(current)


def _no_new(have: float, want: float) -> tuple[float, str]:
    """Under NO_NEW an increase is held at the current size; a new or flipped one closes."""
    if have == 0:
        return 0.0, "kill tier NO_NEW: new position blocked"
    if want * have < 0:
        return 0.0, "kill tier NO_NEW: flip blocked, closing instead"
    return have, "kill tier NO_NEW: increase blocked"


def check_targets(
    targets: Mapping[str, float],
    current: Mapping[str, float],
    tier: KillTier,
    limits: RiskLimits,
) -> tuple[dict[str, float], list[RiskDecision]]:
    """Apply, in order: kill tier, per-position cap, gross leverage cap.

    `targets` and `current` are signed weights of equity. Symbols held now but absent
    from `targets` are targeted to zero. Returns approved weights and every change made.
    """
    decisions: list[RiskDecision] = []
    symbols = sorted(set(targets) | set(current))
    approved: dict[str, float] = {}
    for symbol in symbols:
        want = targets.get(symbol, 0.0)
        have = current.get(symbol, 0.0)
        got, reason = want, ""
        if tier >= KillTier.FLATTEN:
            got, reason = 0.0, "kill tier FLATTEN: closing every position"
        elif tier >= KillTier.NO_NEW and not _reduces(have, want):
            got, reason = _no_new(have, want)
        elif tier >= KillTier.THROTTLE and not _reduces(have, want):
            got, reason = have + (want - have) * limits.throttle_factor, "kill tier THROTTLE"
        if abs(got) > limits.max_position_weight:
            got = limits.max_position_weight * (1 if got > 0 else -1)
            reason = reason or f"position cap {limits.max_position_weight:.0%}"
        approved[symbol] = got
        if reason and abs(got - want) > 1e-12:
            decisions.append(RiskDecision(symbol, want, got, reason))
    gross = sum(abs(w) for w in approved.values())
    if gross > limits.max_gross_leverage:
        scale = limits.max_gross_leverage / gross
        for symbol, weight in approved.items():
            cut = weight * scale
            decisions.append(
                RiskDecision(
                    symbol, weight, cut, f"gross leverage cap {limits.max_gross_leverage}x"
                )
            )
            approved[symbol] = cut
    return approved, decisions
