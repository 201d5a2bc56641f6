"""Oracle: the risk checks exactly as they were before the session-measure cache.

A frozen copy of qgtm/engine/risk/checks.py at bcee1b2 (every measure recomputed on
each call, scipy's connected_components for the correlated groups). It is only used by
tests/engine/risk/test_measure_cache.py to prove that the cached pipeline approves the
same weights, with the same decisions and outcomes, as the uncached one. Do not edit.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse.csgraph import connected_components
from scipy.stats import norm

from qgtm.core.enums import KillTier
from qgtm.core.types import RiskLimits

TRADING_DAYS = 252
EPS = 1e-12


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """What a check did to one symbol's target weight, and why."""

    symbol: str
    requested: float
    approved: float
    reason: str

    @property
    def blocked(self) -> bool:
        """True if the check took a wanted position to zero."""
        return abs(self.approved) < EPS and abs(self.requested) >= EPS


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One check's result for the audit log: its name, what it measured, what it did."""

    check: str
    value: float
    limit: float
    action: str  # "pass", "cut" or "block"


@dataclass(frozen=True, slots=True)
class RiskContext:
    """Point-in-time market facts the checks need.

    `returns` is a (T x N) matrix of daily returns known at the decision, columns in
    `symbols` order; `sleeves` are each strategy's proposed weights and
    `strategy_returns` its realised daily returns (for the Kelly cap).
    """

    symbols: tuple[str, ...] = ()
    sectors: Mapping[str, str] = field(default_factory=dict)
    returns: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    sleeves: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    strategy_returns: Mapping[str, Sequence[float]] = field(default_factory=dict)

    def window(self, limits: RiskLimits) -> np.ndarray:
        """The last risk_lookback rows of returns (finite rows only)."""
        rows = self.returns[-limits.risk_lookback :]
        return rows[np.all(np.isfinite(rows), axis=1)] if rows.size else rows


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Approved weights, every change made (with reasons) and every check's outcome."""

    approved: dict[str, float]
    decisions: list[RiskDecision]
    outcomes: list[CheckOutcome]


# ----- measures (also used by the Risk screen for current usage) -------------------------
def gross_leverage(weights: Mapping[str, float]) -> float:
    """sum_i |w_i|."""
    return sum(abs(w) for w in weights.values())


def net_leverage(weights: Mapping[str, float]) -> float:
    """sum_i w_i."""
    return sum(weights.values())


def sector_exposures(weights: Mapping[str, float], sectors: Mapping[str, str]) -> dict[str, float]:
    """sum of |w_i| per sector (names without a sector count as 'unknown')."""
    result: dict[str, float] = {}
    for symbol, weight in weights.items():
        sector = sectors.get(symbol, "unknown")
        result[sector] = result.get(sector, 0.0) + abs(weight)
    return result


def correlated_groups(
    symbols: Sequence[str], returns: np.ndarray, threshold: float
) -> list[list[str]]:
    """Groups (2+ names) linked by a chain of pairwise return correlations above threshold."""
    if len(symbols) < 2 or returns.shape[0] < 3:
        return []
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(returns, rowvar=False)
    adjacency = np.nan_to_num(corr, nan=0.0) > threshold
    np.fill_diagonal(adjacency, False)
    count, labels = connected_components(adjacency, directed=False)
    groups = [[s for s, lab in zip(symbols, labels, strict=True) if lab == k] for k in range(count)]
    return [g for g in groups if len(g) > 1]


def held_groups(
    weights: Mapping[str, float], context: RiskContext, limits: RiskLimits
) -> list[list[str]]:
    """Correlated groups among the names with a non-zero weight (none without history)."""
    window = context.window(limits)
    if window.ndim != 2 or window.shape[0] < 3 or window.shape[1] != len(context.symbols):
        return []
    held = [s for s in context.symbols if weights.get(s, 0.0) != 0.0]
    cols = [context.symbols.index(s) for s in held]
    return correlated_groups(held, window[:, cols], limits.correlation_threshold)


def _vector(weights: Mapping[str, float], symbols: Sequence[str]) -> np.ndarray:
    return np.array([weights.get(s, 0.0) for s in symbols])


def book_volatility(
    weights: Mapping[str, float], context: RiskContext, limits: RiskLimits
) -> float:
    """Annualised sqrt(w' Sigma w) * sqrt(252), Sigma the daily sample covariance."""
    window = context.window(limits)
    if window.ndim != 2 or window.shape[0] < 3 or window.shape[1] != len(context.symbols):
        return 0.0
    cov = np.atleast_2d(np.cov(window, rowvar=False))
    w = _vector(weights, context.symbols)
    return math.sqrt(max(float(w @ cov @ w), 0.0) * TRADING_DAYS)


def historical_cvar(portfolio_returns: np.ndarray, alpha: float) -> float:
    """Expected shortfall: mean of the worst ceil((1-alpha)*T) daily losses (loss = -return).

    Acerbi & Tasche (2002), the discrete estimator on equally weighted scenarios.
    """
    losses = np.sort(-np.asarray(portfolio_returns, dtype=float))[::-1]
    if losses.size == 0:
        return 0.0
    tail = max(1, math.ceil((1.0 - alpha) * losses.size - 1e-9))
    return float(losses[:tail].mean())


def parametric_cvar(mean: float, std: float, alpha: float) -> float:
    """Gaussian expected shortfall of the loss: -mu + sigma * phi(Phi^-1(alpha)) / (1 - alpha).

    For N(0,1) at alpha = 0.975 this is 2.3378 (the Basel FRTB ES level).
    """
    return -mean + std * _normal_tail_density(alpha) / (1.0 - alpha)


@functools.lru_cache(maxsize=16)
def _normal_tail_density(alpha: float) -> float:
    """phi(Phi^-1(alpha)); remembered per alpha (scipy's ppf/pdf cost ~0.5 ms a call and
    the risk checks ask for the same alpha every session)."""
    return float(norm.pdf(norm.ppf(alpha)))


def book_cvar(
    weights: Mapping[str, float], context: RiskContext, limits: RiskLimits
) -> tuple[float, float]:
    """(historical, parametric) daily CVaR of the book at cvar_alpha over the lookback."""
    window = context.window(limits)
    if window.ndim != 2 or window.shape[0] < 3 or window.shape[1] != len(context.symbols):
        return 0.0, 0.0
    series = window @ _vector(weights, context.symbols)
    return (
        historical_cvar(series, limits.cvar_alpha),
        parametric_cvar(float(series.mean()), float(series.std(ddof=1)), limits.cvar_alpha),
    )


def kelly_cap(daily_returns: Sequence[float], fraction: float) -> float:
    """Fractional Kelly leverage: fraction * mu / sigma^2 (continuous-time Kelly, Thorp 2006),
    mu and sigma^2 annualised from daily returns; 0 when the edge is not positive."""
    series = np.asarray(daily_returns, dtype=float)
    variance = float(series.var(ddof=1)) * TRADING_DAYS
    mu = float(series.mean()) * TRADING_DAYS
    if variance <= 0 or mu <= 0:
        return 0.0
    return fraction * mu / variance


def sleeve_day_return(
    weights: Mapping[str, float], closes: np.ndarray, i: int, column: Mapping[str, int]
) -> float | None:
    """Paper return per unit of gross of a sleeve decided at session i, held over
    close(i) -> close(i+1): r = sum_k w_k (C[i+1,k] / C[i,k] - 1) / sum_k |w_k|.

    Names outside `column` are ignored; None when the sleeve has no gross (or i < 0).
    """
    kept = {s: w for s, w in weights.items() if s in column}
    gross = sum(abs(w) for w in kept.values())
    if gross <= 0 or i < 0:
        return None
    day = sum(w * (closes[i + 1, column[s]] / closes[i, column[s]] - 1.0) for s, w in kept.items())
    return float(day / gross)


def sleeve_window(session_index: int, lookback: int) -> tuple[int, int]:
    """Inclusive range of decision sessions whose sleeve returns are known before
    `session_index`: [session_index - 1 - lookback, session_index - 2]."""
    return session_index - 1 - lookback, session_index - 2


# ----- the pipeline ---------------------------------------------------------------------
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


class _Run:
    """Mutable working set of one pipeline run; records every change with its reason."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = weights
        self.decisions: list[RiskDecision] = []
        self.outcomes: list[CheckOutcome] = []

    def set(self, symbol: str, weight: float, reason: str) -> None:
        before = self.weights.get(symbol, 0.0)
        self.weights[symbol] = weight  # always applied; only visible changes are reported
        if abs(weight - before) > EPS:
            self.decisions.append(RiskDecision(symbol, before, weight, reason))

    def scale(self, symbols: Sequence[str], factor: float, reason: str) -> None:
        for symbol in symbols:
            self.set(symbol, self.weights.get(symbol, 0.0) * factor, reason)

    def outcome(self, check: str, value: float, limit: float, changed: bool) -> None:
        blocked = changed and all(abs(w) < EPS for w in self.weights.values())
        action = "block" if blocked else ("cut" if changed else "pass")
        self.outcomes.append(CheckOutcome(check, value, limit, action))


def _kill_tier(run: _Run, current: Mapping[str, float], tier: KillTier, limits: RiskLimits) -> None:
    changes = len(run.decisions)
    for symbol in sorted(run.weights):
        want, have = run.weights[symbol], current.get(symbol, 0.0)
        if tier >= KillTier.FLATTEN:
            run.set(symbol, 0.0, "kill tier FLATTEN: closing every position")
        elif tier >= KillTier.NO_NEW and not _reduces(have, want):
            run.set(symbol, *_no_new(have, want))
        elif tier >= KillTier.THROTTLE and not _reduces(have, want):
            run.set(symbol, have + (want - have) * limits.throttle_factor, "kill tier THROTTLE")
    run.outcome("kill_tier", float(tier), float(KillTier.NO_NEW), len(run.decisions) > changes)


def _position(run: _Run, limits: RiskLimits) -> None:
    cap = limits.max_position_weight
    largest = max((abs(w) for w in run.weights.values()), default=0.0)
    for symbol, weight in sorted(run.weights.items()):
        if abs(weight) > cap:
            run.set(symbol, math.copysign(cap, weight), f"position cap {cap:.0%}")
    run.outcome("position", largest, cap, largest > cap)


def _sector(run: _Run, context: RiskContext, limits: RiskLimits) -> None:
    cap = limits.max_sector_weight
    exposures = sector_exposures(run.weights, context.sectors)
    exposures.pop("unknown", None)  # names without a sector tag have no sector limit
    worst = max(exposures.values(), default=0.0)
    for sector, exposure in sorted(exposures.items()):
        if exposure > cap and sector != "unknown":
            names = [s for s in run.weights if context.sectors.get(s, "unknown") == sector]
            run.scale(names, cap / exposure, f"sector cap {sector} {cap:.0%}")
    run.outcome("sector", worst, cap, worst > cap)


def _correlation(run: _Run, context: RiskContext, limits: RiskLimits) -> None:
    cap = limits.max_correlated_weight
    groups = held_groups(run.weights, context, limits)
    worst = 0.0
    for group in groups:
        combined = sum(abs(run.weights[s]) for s in group)
        worst = max(worst, combined)
        if combined > cap:
            label = "+".join(group)
            run.scale(group, cap / combined, f"correlation cap {label} {cap:.0%}")
    run.outcome("correlation", worst, cap, worst > cap)


def _gross(run: _Run, limits: RiskLimits) -> None:
    cap = limits.max_gross_leverage
    gross = gross_leverage(run.weights)
    if gross > cap:
        run.scale(list(run.weights), cap / gross, f"gross leverage cap {cap}x")
    run.outcome("gross", gross, cap, gross > cap)


def _net(run: _Run, limits: RiskLimits) -> None:
    """Cut the dominant side pro rata so |net| lands on the cap; the other side is untouched."""
    cap = limits.max_net_leverage
    net = net_leverage(run.weights)
    if abs(net) > cap:
        side = [s for s, w in run.weights.items() if w * net > 0]
        side_total = sum(abs(run.weights[s]) for s in side)
        excess = abs(net) - cap
        run.scale(side, (side_total - excess) / side_total, f"net leverage cap {cap}x")
    run.outcome("net", abs(net), cap, abs(net) > cap)


def _vol_target(run: _Run, context: RiskContext, limits: RiskLimits) -> None:
    target = limits.vol_target
    vol = book_volatility(run.weights, context, limits)
    if vol > target:
        run.scale(list(run.weights), target / vol, f"vol target {target:.0%}")
    run.outcome("vol_target", vol, target, vol > target)


def _kelly(run: _Run, context: RiskContext, limits: RiskLimits) -> None:
    """Scale each strategy's sleeve gross to at most max(kelly_fraction * f*,
    kelly_min_leverage), then pass the cut to the
    book symbol by symbol: w_i *= sum_s k_s sleeve_si / sum_s sleeve_si, clipped to [0, 1]."""
    factors: dict[str, float] = {}
    worst = 0.0
    for strategy, sleeve in context.sleeves.items():
        history = context.strategy_returns.get(strategy, ())
        gross = sum(abs(w) for w in sleeve.values())
        if len(history) < limits.kelly_min_obs or gross <= EPS:
            continue
        # A strategy without a measured edge keeps a small probe sleeve (0 = strict Kelly).
        cap = max(kelly_cap(history, limits.kelly_fraction), limits.kelly_min_leverage)
        worst = max(worst, gross / cap if cap > 0 else math.inf)
        if gross > cap:
            factors[strategy] = cap / gross
    for symbol in sorted(run.weights):
        total = sum(sl.get(symbol, 0.0) for sl in context.sleeves.values())
        if abs(total) <= EPS or not factors:
            continue
        kept = sum(factors.get(k, 1.0) * sl.get(symbol, 0.0) for k, sl in context.sleeves.items())
        ratio = min(max(kept / total, 0.0), 1.0)
        if ratio < 1.0:
            run.set(symbol, run.weights[symbol] * ratio, "fractional Kelly cap")
    run.outcome("kelly", worst, 1.0, bool(factors))


def _cvar(run: _Run, context: RiskContext, limits: RiskLimits) -> None:
    """CVaR is positively homogeneous, so scaling the book by limit / CVaR lands on the limit."""
    cap = limits.cvar_limit
    historical, parametric = book_cvar(run.weights, context, limits)
    worst = max(historical, parametric)
    if worst > cap:
        kind = "historical" if historical >= parametric else "parametric"
        run.scale(list(run.weights), cap / worst, f"{kind} CVaR limit {cap:.1%}")
    run.outcome("cvar", worst, cap, worst > cap)


def limit_violations(
    weights: Mapping[str, float], context: RiskContext, limits: RiskLimits
) -> list[str]:
    """Names of the limits `weights` break (empty when the set is inside every limit)."""
    broken = []
    tol = 1e-9
    if any(abs(w) > limits.max_position_weight + tol for w in weights.values()):
        broken.append("position")
    sectors = sector_exposures(weights, context.sectors)
    sectors.pop("unknown", None)
    if any(v > limits.max_sector_weight + tol for v in sectors.values()):
        broken.append("sector")
    for group in held_groups(weights, context, limits):
        if sum(abs(weights[s]) for s in group) > limits.max_correlated_weight + tol:
            broken.append("correlation")
            break
    if gross_leverage(weights) > limits.max_gross_leverage + tol:
        broken.append("gross")
    if abs(net_leverage(weights)) > limits.max_net_leverage + tol:
        broken.append("net")
    if book_volatility(weights, context, limits) > limits.vol_target + tol:
        broken.append("vol_target")
    if max(book_cvar(weights, context, limits)) > limits.cvar_limit + tol:
        broken.append("cvar")
    return broken


def run_checks(
    targets: Mapping[str, float],
    current: Mapping[str, float],
    tier: KillTier,
    limits: RiskLimits,
    context: RiskContext | None = None,
) -> CheckResult:
    """Apply every pre-trade check in order; symbols held but not targeted go to zero."""
    context = context or RiskContext()
    weights = {s: targets.get(s, 0.0) for s in sorted(set(targets) | set(current))}
    run = _Run(weights)
    steps: list[Callable[[], None]] = [
        lambda: _kill_tier(run, current, tier, limits),
        lambda: _position(run, limits),
        lambda: _sector(run, context, limits),
        lambda: _correlation(run, context, limits),
        lambda: _gross(run, limits),
        lambda: _net(run, limits),
        lambda: _vol_target(run, context, limits),
        lambda: _kelly(run, context, limits),
        lambda: _cvar(run, context, limits),
    ]
    for step in steps:
        step()
    for _ in range(64):  # each halving halves every measure; 64 reach zero in floats
        if not limit_violations(run.weights, context, limits):
            break
        run.scale(list(run.weights), 0.5, "final guard: limits still broken, halving the book")
    return CheckResult(dict(run.weights), run.decisions, run.outcomes)
