"""Turn per-strategy signal sets into target portfolio weights (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from qgtm.core.types import Signal
from qgtm.engine.portfolio.leverage import adaptive_leverage, apply_no_trade_band
from qgtm.engine.portfolio.weighting import SCHEMES, sample_covariance

if TYPE_CHECKING:
    from qgtm.core.config import Config, PortfolioConfig

VOL_WINDOW = 63
TRADING_DAYS = 252


def inverse_vol_weights(
    signals: Sequence[Signal], vols: Mapping[str, float], gross_target: float
) -> dict[str, float]:
    """Signed weights w_i = s_i * (1/sigma_i) / sum_j (1/sigma_j) * gross_target.

    Only symbols with a LONG or SHORT signal and a positive vol take part; when one
    symbol has several signals their directions are netted by confidence.
    """
    netted: dict[str, float] = {}
    for signal in signals:
        netted[signal.symbol] = netted.get(signal.symbol, 0.0) + (
            signal.side.sign * max(signal.confidence, 1e-9)
        )
    active = {s: v for s, v in netted.items() if v != 0 and vols.get(s, 0.0) > 0}
    if not active:
        return {}
    inverse = {s: 1.0 / vols[s] for s in active}
    total = sum(inverse.values())
    return {s: (1.0 if active[s] > 0 else -1.0) * inverse[s] / total * gross_target for s in active}


def realised_vols(closes: np.ndarray, symbols: Sequence[str]) -> dict[str, float]:
    """Annualised stdev of the last VOL_WINDOW daily log returns, per symbol.

    sigma_i = std(diff(log close_i), ddof=1) * sqrt(252) over the newest VOL_WINDOW
    returns of `closes` (rows are sessions, all before the decision).
    """
    window = closes[-VOL_WINDOW - 1 :]
    if len(window) < 3:
        return {}
    sigma = np.diff(np.log(window), axis=0).std(axis=0, ddof=1) * np.sqrt(TRADING_DAYS)
    return {s: float(v) for s, v in zip(symbols, sigma, strict=True)}


def realised_vol_matrix(closes: np.ndarray) -> np.ndarray:
    """Row i: `realised_vols` of the rows before i, for every session at once (NaN while
    fewer than 3 closes). Each row is the same reduction over the same returns as
    realised_vols(closes[:i]), so the values are equal bit for bit (tested)."""
    sessions, symbols = closes.shape
    log_returns = np.diff(np.log(closes), axis=0)
    out = np.full((sessions, symbols), np.nan)
    for i in range(3, min(VOL_WINDOW + 1, sessions)):
        out[i] = log_returns[: i - 1].std(axis=0, ddof=1) * np.sqrt(TRADING_DAYS)
    if sessions > VOL_WINDOW + 1:
        windows = sliding_window_view(log_returns, VOL_WINDOW, axis=0)  # (k, symbols, 63)
        sigma = windows.std(axis=2, ddof=1) * np.sqrt(TRADING_DAYS)
        out[VOL_WINDOW + 1 :] = sigma[: sessions - VOL_WINDOW - 1]
    return out


@dataclass(frozen=True, slots=True)
class AllocationSettings:
    """How signals become weights (see [portfolio] in config)."""

    method: str = "inverse_vol"
    gross_target: float = 0.6
    max_leverage: float = 1.0
    min_leverage: float = 0.25
    dampen_start: float = 0.05
    dampen_full: float = 0.20
    no_trade_band: float = 0.01

    @classmethod
    def from_config(cls, config: Config) -> AllocationSettings:
        """[portfolio] plus engine.gross_target, as the live engine allocates."""
        return cls.from_portfolio(config.portfolio, config.engine.gross_target)

    @classmethod
    def from_portfolio(cls, p: PortfolioConfig, gross_target: float) -> AllocationSettings:
        """The [portfolio] section with a gross target (the backtest's entry point)."""
        return cls(
            method=p.method,
            gross_target=gross_target,
            max_leverage=p.max_leverage,
            min_leverage=p.min_leverage,
            dampen_start=p.dampen_start,
            dampen_full=p.dampen_full,
            no_trade_band=p.no_trade_band,
        )


def daily_returns(closes_before: np.ndarray, sessions: int) -> np.ndarray:
    """Simple close-to-close returns r_t = C_t / C_{t-1} - 1 of the newest `sessions`
    sessions of `closes_before` (rows: sessions before the decision; T x N out)."""
    window = closes_before[-sessions - 1 :]
    if len(window) < 2:
        return np.zeros((0, closes_before.shape[1]))
    return window[1:] / window[:-1] - 1.0


@dataclass(frozen=True, slots=True)
class Allocation:
    """The allocator's proposal: book targets, each strategy's sleeve, the leverage used."""

    targets: dict[str, float]
    sleeves: dict[str, dict[str, float]]
    leverage: float


def _directions(signals: Sequence[Signal]) -> dict[str, float]:
    """Net direction per symbol: sum of sign * confidence over the strategy's signals."""
    netted: dict[str, float] = {}
    for signal in signals:
        netted[signal.symbol] = netted.get(signal.symbol, 0.0) + (
            signal.side.sign * max(signal.confidence, 1e-9)
        )
    return {s: v for s, v in netted.items() if v != 0}


def sleeve_weights(
    signals: Sequence[Signal],
    returns: np.ndarray,
    symbols: Sequence[str],
    method: str,
    budget: float,
) -> dict[str, float]:
    """One strategy's signed weights: scheme weights on its active names, times `budget`.

    `returns` is a (T x N) matrix of daily returns known before the decision, columns in
    `symbols` order; names without a usable history are left out.
    """
    return _sleeve_from_directions(_directions(signals), returns, symbols, method, budget)


def _sleeve_from_directions(
    directions: Mapping[str, float],
    returns: np.ndarray,
    symbols: Sequence[str],
    method: str,
    budget: float,
) -> dict[str, float]:
    """`sleeve_weights` from the strategy's netted directions (`_directions`)."""
    try:
        scheme = SCHEMES[method]
    except KeyError:
        known = ", ".join(sorted(SCHEMES))
        raise ValueError(f"unknown allocation method {method!r} (known: {known})") from None
    column = {s: i for i, s in enumerate(symbols)}
    names = sorted(s for s in directions if s in column)
    if not names or returns.shape[0] < 3:
        return {}
    cols = [column[s] for s in names]
    cov = sample_covariance(returns[:, cols])
    usable = [i for i in range(len(names)) if cov[i, i] > 0 and np.isfinite(cov[i, i])]
    if not usable:
        return {}
    if len(usable) < len(names):  # the usual case keeps every name: no copy to take
        names = [names[i] for i in usable]
        cov = cov[np.ix_(usable, usable)]
    weights = scheme(cov)
    return {
        s: float(np.sign(directions[s]) * w * budget) for s, w in zip(names, weights, strict=True)
    }


def allocate(
    signals_by_strategy: Mapping[str, Sequence[Signal]],
    returns: np.ndarray,
    symbols: Sequence[str],
    current: Mapping[str, float],
    drawdown: float,
    settings: AllocationSettings,
) -> Allocation:
    """Pure multi-strategy allocation.

    Each strategy with signals gets an equal share of gross_target * L(drawdown) (adaptive
    leverage, `adaptive_leverage`); inside its sleeve the names are weighted by
    `settings.method` on the covariance of `returns`; sleeves are summed per symbol and the
    no-trade band keeps current weights that moved less than `no_trade_band`.
    """
    leverage = adaptive_leverage(
        drawdown,
        settings.max_leverage,
        settings.min_leverage,
        settings.dampen_start,
        settings.dampen_full,
    )
    # each strategy's signals are netted once, for the activity test and for its sleeve
    netted = {k: _directions(v) for k, v in signals_by_strategy.items()}
    active = {k: v for k, v in netted.items() if v}
    sleeves: dict[str, dict[str, float]] = {}
    if active:
        budget = settings.gross_target * leverage / len(active)
        for strategy in sorted(active):
            sleeves[strategy] = _sleeve_from_directions(
                active[strategy], returns, symbols, settings.method, budget
            )
    combined: dict[str, float] = {}
    for sleeve in sleeves.values():
        for symbol, weight in sleeve.items():
            combined[symbol] = combined.get(symbol, 0.0) + weight
    targets = apply_no_trade_band(combined, current, settings.no_trade_band)
    return Allocation(
        targets={s: w for s, w in targets.items() if w != 0.0}, sleeves=sleeves, leverage=leverage
    )
