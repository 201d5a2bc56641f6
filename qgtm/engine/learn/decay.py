"""Decay monitor: is a strategy still doing what it was built to do?

Each rebalance, per strategy, over the last `window` sessions of its own signal returns:
- rolling Sharpe  S = mean(r) / std(r) * sqrt(252);
- hit rate        share of sessions with r > 0;
- exposure drift  max over declared factors f of |declared_f - corr(r, factor_f)|,
  where declared exposures live in [-1, 1] and factor_f is a factor-mimicking return
  built from the same bars (see `factor_returns`).
A strategy is DECAYED if any metric breaches its decayed threshold, WARNING if any
breaches its warning threshold, else HEALTHY.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from qgtm.core.config import LearnConfig
from qgtm.engine.backtest.stats import sharpe_ratio


class DecayStatus(StrEnum):
    """Health of a strategy as the decay monitor sees it."""

    HEALTHY = "HEALTHY"
    WARNING = "WARNING"
    DECAYED = "DECAYED"


@dataclass(frozen=True, slots=True)
class DecayReport:
    """One assessment of one strategy."""

    strategy: str
    status: DecayStatus
    rolling_sharpe: float
    hit_rate: float
    exposure_drift: float
    observations: int
    reasons: tuple[str, ...]


def exposure_drift(
    returns: np.ndarray, declared: dict[str, float], factors: dict[str, np.ndarray]
) -> float:
    """max_f |declared_f - corr(returns, factor_f)| over declared factors that have a proxy."""
    drifts = []
    for name, exposure in declared.items():
        factor = factors.get(name)
        if factor is None or len(factor) != len(returns) or len(returns) < 3:
            continue
        if np.std(factor) == 0 or np.std(returns) == 0:
            continue
        realised = float(np.corrcoef(returns, factor)[0, 1])
        drifts.append(abs(float(np.clip(exposure, -1, 1)) - realised))
    return max(drifts, default=0.0)


def assess(
    strategy: str,
    returns: np.ndarray,
    declared: dict[str, float],
    factors: dict[str, np.ndarray],
    config: LearnConfig,
) -> DecayReport:
    """Classify HEALTHY / WARNING / DECAYED from the last `config.window` returns."""
    window = returns[-config.window :]
    aligned = {k: v[-config.window :] for k, v in factors.items()}
    sharpe = sharpe_ratio(window) if len(window) > 1 else 0.0
    hit_rate = float(np.mean(window > 0)) if len(window) else 0.0
    drift = exposure_drift(window, declared, aligned)
    if len(window) < config.window:
        return DecayReport(
            strategy, DecayStatus.HEALTHY, sharpe, hit_rate, drift, len(window), ("warming up",)
        )
    decayed, warning = [], []
    for label, value, warn_at, decay_at, higher_is_worse in (
        ("Sharpe", sharpe, config.warning_sharpe, config.decayed_sharpe, False),
        ("hit rate", hit_rate, config.warning_hit_rate, config.decayed_hit_rate, False),
        (
            "exposure drift",
            drift,
            config.warning_exposure_drift,
            config.decayed_exposure_drift,
            True,
        ),
    ):
        breach_decay = value > decay_at if higher_is_worse else value < decay_at
        breach_warn = value > warn_at if higher_is_worse else value < warn_at
        if breach_decay:
            decayed.append(f"{label} {value:.2f} beyond {decay_at:.2f}")
        elif breach_warn:
            warning.append(f"{label} {value:.2f} beyond {warn_at:.2f}")
    if decayed:
        status = DecayStatus.DECAYED
    elif warning:
        status = DecayStatus.WARNING
    else:
        status = DecayStatus.HEALTHY
    return DecayReport(
        strategy, status, sharpe, hit_rate, drift, len(window), tuple(decayed + warning)
    )


def signal_portfolio_returns(weights: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """Daily returns of positions `weights[t]` (decided before session t+1) held close t->t+1.

    weights: (T, N) signed weights, row t decided from bars up to t; closes: (T+1, N).
    Returns r[t] = sum_i w[t, i] * (close[t+1, i] / close[t, i] - 1).
    """
    simple = closes[1:] / closes[:-1] - 1.0
    return np.sum(weights * simple, axis=1)


def factor_returns(closes: np.ndarray) -> dict[str, np.ndarray]:
    """Factor-mimicking daily returns from the same bars, aligned with closes[1:] / closes[:-1].

    market: equal-weight long of every symbol.
    trend: equal-weight sign of the 12-1 momentum (252 to 21 sessions ago), 0 until warm.
    mean_reversion: minus the sign of the 5-session return, equal weight.
    """
    simple = closes[1:] / closes[:-1] - 1.0
    n_days, n_assets = simple.shape
    market = simple.mean(axis=1)
    log_close = np.log(closes)
    trend_w = np.zeros_like(simple)
    reversion_w = np.zeros_like(simple)
    for t in range(n_days):
        # Position held over (t, t+1) is decided from closes up to t.
        if t >= 252:
            trend_w[t] = np.sign(log_close[t - 21] - log_close[t - 252]) / n_assets
        if t >= 5:
            reversion_w[t] = -np.sign(log_close[t] - log_close[t - 5]) / n_assets
    return {
        "market": market,
        "trend": np.sum(trend_w * simple, axis=1),
        "mean_reversion": np.sum(reversion_w * simple, axis=1),
    }
