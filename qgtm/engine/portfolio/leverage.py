"""Adaptive leverage with drawdown dampening, and the no-trade band."""

from __future__ import annotations

from collections.abc import Mapping


def adaptive_leverage(
    drawdown: float,
    max_leverage: float,
    min_leverage: float,
    dampen_start: float,
    dampen_full: float,
) -> float:
    """Leverage multiplier as a piecewise-linear function of the drawdown from peak.

    L(dd) = max_leverage for dd <= dampen_start, min_leverage for dd >= dampen_full, and
    linear in between. It depends only on the current drawdown, so leverage comes back
    up as the book recovers towards its peak.
    """
    if not 0 <= min_leverage <= max_leverage:
        raise ValueError("leverage bounds need 0 <= min_leverage <= max_leverage")
    if not 0 <= dampen_start < dampen_full:
        raise ValueError("drawdown dampening needs 0 <= dampen_start < dampen_full")
    if drawdown <= dampen_start:
        return max_leverage
    if drawdown >= dampen_full:
        return min_leverage
    share = (drawdown - dampen_start) / (dampen_full - dampen_start)
    return max_leverage - share * (max_leverage - min_leverage)


def apply_no_trade_band(
    targets: Mapping[str, float], current: Mapping[str, float], band: float
) -> dict[str, float]:
    """Keep the current weight where |target - current| < band (weight terms).

    Closing a position (target 0) is always kept, so exits are never swallowed by the band.
    """
    if band < 0:
        raise ValueError("no-trade band must be >= 0")
    result: dict[str, float] = {}
    for symbol in sorted(set(targets) | set(current)):
        want = targets.get(symbol, 0.0)
        have = current.get(symbol, 0.0)
        keep = want != 0.0 and abs(want - have) < band
        result[symbol] = have if keep else want
    return result
