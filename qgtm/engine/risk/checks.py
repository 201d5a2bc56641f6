"""Pre-trade checks, in order, over signed target weights (fractions of equity).

kill tier -> position cap -> sector cap -> correlation cap -> gross leverage -> net
leverage -> volatility target -> fractional Kelly per strategy -> CVaR (historical and
parametric). Every check only moves weights towards zero, so a later check never undoes
an earlier one; a final uniform scale-down guards the whole set (defense in depth).
All functions are pure: no I/O, no clock.

Speed: one decision asks for the same session-level measures several times (each check,
then the final guard). `RiskContext` remembers them for its lifetime: the finite return
window, its sample covariance, the correlated groups of a held set, and the volatility and
CVaR of a weight vector. Each is computed by exactly the same expression as before, so
a remembered value is bit-for-bit the value a fresh computation would give
(tests/engine/risk/test_measure_cache.py checks the pipeline against the uncached one).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from qgtm.core.enums import KillTier
from qgtm.core.types import RiskLimits
from qgtm.engine.portfolio.weighting import sample_covariance

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

    A context describes one decision and must not be mutated after it is built: the
    measures derived from `returns` are remembered in `memo` (see the module docstring).
    """

    symbols: tuple[str, ...] = ()
    sectors: Mapping[str, str] = field(default_factory=dict)
    returns: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    sleeves: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    strategy_returns: Mapping[str, Sequence[float]] = field(default_factory=dict)
    memo: dict[tuple, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    def window(self, limits: RiskLimits) -> np.ndarray:
        """The last risk_lookback rows of returns (finite rows only)."""
        key = ("window", limits.risk_lookback)
        cached = self.memo.get(key)
        if cached is None:
            rows = self.returns[-limits.risk_lookback :]
            cached = rows[np.all(np.isfinite(rows), axis=1)] if rows.size else rows
            self.memo[key] = cached
        return cached  # type: ignore[return-value]

    def usable_window(self, limits: RiskLimits) -> np.ndarray | None:
        """`window` when it can carry a measure (2-D, 3+ rows, one column per symbol)."""
        key = ("usable", limits.risk_lookback)
        if key in self.memo:  # asked by every measure of every check (None is an answer)
            return self.memo[key]  # type: ignore[return-value]
        window: np.ndarray | None = self.window(limits)
        if window.ndim != 2 or window.shape[0] < 3 or window.shape[1] != len(self.symbols):
            window = None
        self.memo[key] = window
        return window

    def covariance(self, limits: RiskLimits) -> np.ndarray:
        """Daily sample covariance of the usable window (`sample_covariance`), remembered."""
        key = ("cov", limits.risk_lookback)
        cached = self.memo.get(key)
        if cached is None:
            window = self.usable_window(limits)
            if window is None:
                raise ValueError("no usable return window for a covariance")
            cached = self.memo[key] = sample_covariance(window)
        return cached  # type: ignore[return-value]


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


def connected_groups(adjacency: np.ndarray) -> list[list[int]]:
    """Connected components (2+ nodes) of an undirected graph given as a boolean matrix.

    An edge joins i and j when adjacency[i, j] or adjacency[j, i] is set. Reachability is
    the transitive closure R = (A | A' | I)^k in boolean arithmetic, squared until it
    stops growing (at most ceil(log2 n) squarings); each node's component is named by its
    smallest member (the first True of its row of R). Groups come in the order of their
    smallest member, members ascending: the same grouping and order as
    scipy.sparse.csgraph.connected_components labels (a property test checks it).
    """
    a = np.asarray(adjacency, dtype=bool)
    n = a.shape[0]
    if n < 2 or not a.any():
        return []
    reach = a | a.T
    np.fill_diagonal(reach, True)
    while True:
        grown = reach @ reach
        if np.array_equal(grown, reach):
            break
        reach = grown
    roots = reach.argmax(axis=1)
    groups: dict[int, list[int]] = {}
    for node, root in enumerate(roots.tolist()):
        groups.setdefault(root, []).append(node)
    return [members for _, members in sorted(groups.items()) if len(members) > 1]


def correlation_matrix(returns: np.ndarray) -> np.ndarray:
    """Pearson correlations of the columns of a (T x N) matrix, N >= 2:
    rho_ij = S_ij / sqrt(S_ii S_jj), S the sample covariance, clipped to [-1, 1];
    NaN where a column has no variance.

    np.corrcoef(returns, rowvar=False)'s own steps on `sample_covariance` (bit-for-bit
    equal to it; tests/engine/risk/test_measure_cache.py).
    """
    corr = sample_covariance(returns)
    stddev = np.sqrt(np.diag(corr))
    if (stddev > 0).all():
        corr /= stddev[:, None]
        corr /= stddev[None, :]
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            corr /= stddev[:, None]
            corr /= stddev[None, :]
    np.clip(corr, -1, 1, out=corr)
    return corr


def correlated_groups(
    symbols: Sequence[str], returns: np.ndarray, threshold: float
) -> list[list[str]]:
    """Groups (2+ names) linked by a chain of pairwise return correlations above threshold."""
    if len(symbols) < 2 or returns.shape[0] < 3:
        return []
    adjacency = np.nan_to_num(correlation_matrix(returns), nan=0.0) > threshold
    np.fill_diagonal(adjacency, False)
    return [[symbols[k] for k in group] for group in connected_groups(adjacency)]


def held_groups(
    weights: Mapping[str, float], context: RiskContext, limits: RiskLimits
) -> list[list[str]]:
    """Correlated groups among the names with a non-zero weight (none without history).

    Remembered per held set: scaling a book keeps its held set, so the checks and the
    final guard share one measurement.
    """
    window = context.usable_window(limits)
    if window is None:
        return []
    cols = tuple(j for j, s in enumerate(context.symbols) if weights.get(s, 0.0) != 0.0)
    if len(cols) < 2:
        return []  # a group needs two names (correlated_groups' own first answer)
    key = ("groups", limits.risk_lookback, limits.correlation_threshold, cols)
    cached = context.memo.get(key)
    if cached is None:
        held = [context.symbols[j] for j in cols]
        sub = window[:, list(cols)]
        cached = context.memo[key] = correlated_groups(held, sub, limits.correlation_threshold)
    return [list(group) for group in cached]  # type: ignore[attr-defined]


def _vector(weights: Mapping[str, float], symbols: Sequence[str]) -> np.ndarray:
    return np.array([weights.get(s, 0.0) for s in symbols])


def book_volatility(
    weights: Mapping[str, float], context: RiskContext, limits: RiskLimits
) -> float:
    """Annualised sqrt(w' Sigma w) * sqrt(252), Sigma the daily sample covariance."""
    if context.usable_window(limits) is None:
        return 0.0
    w = _vector(weights, context.symbols)
    key = ("vol", limits.risk_lookback, w.tobytes())
    cached = context.memo.get(key)
    if cached is None:
        cov = context.covariance(limits)
        cached = context.memo[key] = math.sqrt(max(float(w @ cov @ w), 0.0) * TRADING_DAYS)
    return cached  # type: ignore[return-value]


def mean_and_variance(series: np.ndarray) -> tuple[float, float]:
    """(mean, unbiased variance) of a 1-D float64 series of 2+ values:
    m = sum(x) / n, s^2 = sum((x - m)^2) / (n - 1).

    The steps of numpy's own `series.mean()` and `series.var(ddof=1)` (one pairwise
    np.add.reduce, then a true division by the count; centring, squaring, a second
    reduce), without their Python-level argument handling, which costs more than the
    arithmetic on a risk window: bit-for-bit equal to them
    (tests/engine/risk/test_measure_cache.py). sqrt of the variance is numpy's std.
    """
    n = series.shape[0]
    mean = float(np.add.reduce(series)) / n
    centred = series - mean
    return mean, float(np.add.reduce(centred * centred)) / (n - 1)


def historical_cvar(portfolio_returns: np.ndarray, alpha: float) -> float:
    """Expected shortfall: mean of the worst ceil((1-alpha)*T) daily losses (loss = -return).

    Acerbi & Tasche (2002), the discrete estimator on equally weighted scenarios.
    """
    losses = np.sort(-np.asarray(portfolio_returns, dtype=float))[::-1]
    if losses.size == 0:
        return 0.0
    tail = max(1, math.ceil((1.0 - alpha) * losses.size - 1e-9))
    return float(np.add.reduce(losses[:tail])) / tail  # ndarray.mean's steps, leaner


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
    """(historical, parametric) daily CVaR of the book at cvar_alpha over the lookback.

    Remembered per weight vector (the final guard re-measures the book a check left).
    """
    window = context.usable_window(limits)
    if window is None:
        return 0.0, 0.0
    w = _vector(weights, context.symbols)
    key = ("cvar", limits.risk_lookback, limits.cvar_alpha, w.tobytes())
    cached = context.memo.get(key)
    if cached is None:
        series = window @ w
        mean, variance = mean_and_variance(series)
        cached = context.memo[key] = (
            historical_cvar(series, limits.cvar_alpha),
            parametric_cvar(mean, math.sqrt(variance), limits.cvar_alpha),
        )
    return cached  # type: ignore[return-value]


def kelly_cap(daily_returns: Sequence[float], fraction: float) -> float:
    """Fractional Kelly leverage: fraction * mu / sigma^2 (continuous-time Kelly, Thorp 2006),
    mu and sigma^2 annualised from daily returns; 0 when the edge is not positive."""
    series = np.asarray(daily_returns, dtype=float)
    if series.ndim == 1 and series.shape[0] >= 2:
        mean, variance = mean_and_variance(series)
        variance, mu = variance * TRADING_DAYS, mean * TRADING_DAYS
    else:  # numpy's answer (NaN, with its warning) for a series too short for a variance
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
    for symbol in sorted(run.weights) if factors else ():  # no cut, nothing to pass on
        total = sum(sl.get(symbol, 0.0) for sl in context.sleeves.values())
        if abs(total) <= EPS:
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
