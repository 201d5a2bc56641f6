"""Validation statistics: is a backtest's edge real or the best of many tries?

- Probabilistic Sharpe ratio and minimum track record length: Bailey & Lopez de Prado
  (2012), "The Sharpe ratio efficient frontier", J. Risk 15(2).
- Deflated Sharpe ratio: Bailey & Lopez de Prado (2014), "The deflated Sharpe ratio",
  J. Portfolio Management 40(5).
- Probability of backtest overfitting by combinatorially symmetric cross-validation:
  Bailey, Borwein, Lopez de Prado, Zhu (2015), J. Computational Finance 20(4).
- Purged k-fold with embargo: Lopez de Prado (2018), Advances in Financial Machine
  Learning, ch. 7.
- Walk-forward (rolling and anchored) with out-of-sample stitching.
Sharpe ratios here are per period (not annualised) unless a name says otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()
SESSIONS_PER_YEAR = 252
MIN_RELIABLE_SESSIONS = SESSIONS_PER_YEAR
"""Below one year of daily returns a backtest's headline statistics get a warning.

The standard error of an annualised Sharpe ratio from n daily returns is about
sqrt(252 / n) (Lo 2002, "The statistics of Sharpe ratios", Financial Analysts Journal
58(4), the IID case with a small daily Sharpe): 2.0 over 60 sessions, 1.0 over 252. Under a
year, one standard error exceeds the Sharpe of nearly every real strategy, CAGR
extrapolates part of a year, and PSR's skewness and kurtosis rest on too few returns."""


@dataclass(frozen=True, slots=True)
class SharpeMoments:
    """Per-period Sharpe, skewness and (non-excess) kurtosis of n returns."""

    sharpe: float
    skew: float
    kurtosis: float
    n: int


def sharpe_moments(returns: np.ndarray) -> SharpeMoments:
    """SR = mean/std (ddof=1); skew = m3/m2^1.5; kurtosis = m4/m2^2 (3 for a normal)."""
    r = np.asarray(returns, dtype=float)
    centred = r - r.mean()
    m2 = float(np.mean(centred**2))
    sd = float(np.std(r, ddof=1)) if len(r) > 1 else 0.0
    if m2 == 0 or sd == 0:
        return SharpeMoments(0.0, 0.0, 3.0, len(r))
    return SharpeMoments(
        sharpe=float(r.mean() / sd),
        skew=float(np.mean(centred**3) / m2**1.5),
        kurtosis=float(np.mean(centred**4) / m2**2),
        n=len(r),
    )


def _sharpe_sd(sharpe: float, skew: float, kurtosis: float) -> float:
    """sqrt(1 - skew*SR + (kurtosis - 1)/4 * SR^2), the Sharpe estimator's scale."""
    return math.sqrt(max(1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2, 1e-12))


def probabilistic_sharpe_ratio(
    sharpe: float, n: int, skew: float, kurtosis: float, benchmark: float = 0.0
) -> float:
    """PSR(SR*) = Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2)).

    Bailey & Lopez de Prado (2012), eq. 11; SR per period, g4 non-excess kurtosis.
    """
    z = (sharpe - benchmark) * math.sqrt(n - 1) / _sharpe_sd(sharpe, skew, kurtosis)
    return _NORMAL.cdf(z)


def min_track_record_length(
    sharpe: float, skew: float, kurtosis: float, benchmark: float = 0.0, alpha: float = 0.05
) -> float:
    """MinTRL = 1 + (1 - g3 SR + (g4 - 1)/4 SR^2) * (Z_{1-alpha} / (SR - SR*))^2.

    Observations needed for PSR(SR*) >= 1 - alpha (Bailey & Lopez de Prado 2012, eq. 13).
    Infinite when SR <= SR*.
    """
    if sharpe <= benchmark:
        return math.inf
    z = _NORMAL.inv_cdf(1.0 - alpha)
    return 1.0 + _sharpe_sd(sharpe, skew, kurtosis) ** 2 * (z / (sharpe - benchmark)) ** 2


def short_window_warning(sessions: int) -> str | None:
    """A one-line warning when `sessions` daily returns are too few for the annualised
    statistics shown (see MIN_RELIABLE_SESSIONS); None for a long enough window."""
    if sessions >= MIN_RELIABLE_SESSIONS:
        return None
    error = math.sqrt(SESSIONS_PER_YEAR / max(sessions, 1))
    return (
        f"short window: {sessions} sessions < {MIN_RELIABLE_SESSIONS} (one year); "
        f"Sharpe is +/-{error:.1f} (one standard error), CAGR and PSR are not reliable"
    )


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """SR0 = sqrt(V[SR]) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e))).

    The expected best Sharpe of N unskilled trials (Bailey & Lopez de Prado 2014, eq. 2).
    """
    if n_trials < 2:
        return 0.0
    first = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    second = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sharpe_variance) * ((1 - EULER_GAMMA) * first + EULER_GAMMA * second)


def deflated_sharpe_ratio(
    sharpe: float, n: int, skew: float, kurtosis: float, n_trials: int, sharpe_variance: float
) -> float:
    """DSR = PSR(SR0) with SR0 = expected_max_sharpe(N, V[SR]) (Bailey & LdP 2014, eq. 1)."""
    benchmark = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(sharpe, n, skew, kurtosis, benchmark)


# ----- probability of backtest overfitting ---------------------------------------------
@dataclass(frozen=True, slots=True)
class OverfitResult:
    """PBO and the logit of the IS-best configuration's OOS relative rank per split."""

    pbo: float
    logits: tuple[float, ...]


def _sharpe_columns(block: np.ndarray) -> np.ndarray:
    sd = block.std(axis=0, ddof=1)
    return np.where(sd > 0, block.mean(axis=0) / np.where(sd > 0, sd, 1.0), 0.0)


def probability_of_backtest_overfitting(
    performance: np.ndarray,
    n_splits: int = 16,
    metric: Callable[[np.ndarray], np.ndarray] = _sharpe_columns,
) -> OverfitResult:
    """CSCV (Bailey, Borwein, Lopez de Prado, Zhu 2015, section 2).

    `performance` is T x N (returns of N configurations). Rows are cut into S = n_splits
    contiguous blocks; for each of the C(S, S/2) choices of S/2 blocks as in-sample (IS),
    the rest out-of-sample (OOS): n* = argmax IS metric, w = rank of n* among the OOS
    metrics / (N + 1) (rank 1 = worst), logit = ln(w / (1 - w)). PBO = share of
    logits <= 0, i.e. how often the IS winner is no better than the OOS median.
    """
    matrix = np.asarray(performance, dtype=float)
    if n_splits < 2 or n_splits % 2:
        raise ValueError("n_splits must be an even number >= 2")
    if matrix.ndim != 2 or matrix.shape[1] < 2 or matrix.shape[0] < n_splits:
        raise ValueError("need a T x N matrix with N >= 2 configurations and T >= n_splits")
    blocks = np.array_split(np.arange(matrix.shape[0]), n_splits)
    n_configs = matrix.shape[1]
    if metric is _sharpe_columns:
        return _pbo_of_sharpes(matrix, blocks)
    logits = []
    for chosen in combinations(range(n_splits), n_splits // 2):
        in_rows = np.concatenate([blocks[b] for b in chosen])
        out_rows = np.concatenate([blocks[b] for b in range(n_splits) if b not in chosen])
        best = int(np.argmax(metric(matrix[in_rows])))
        oos = metric(matrix[out_rows])
        rank = 1 + int(np.sum(oos < oos[best]))  # ties rank below the winner's score
        w = rank / (n_configs + 1)
        logits.append(math.log(w / (1 - w)))
    return OverfitResult(
        pbo=float(np.mean(np.array(logits) <= 0)),
        logits=tuple(logits),
    )


def _pbo_of_sharpes(matrix: np.ndarray, blocks: list[np.ndarray]) -> OverfitResult:
    """CSCV with the Sharpe metric from per-block moments: every split's IS and OOS
    mean and variance are sums of its blocks' column sums and sums of squares (taken
    about each column's overall mean, so the subtraction loses no precision), one
    matrix product for all C(S, S/2) splits instead of a pass over the rows per split.
    Same ranks as `_sharpe_columns` on the gathered rows (tested to agree)."""
    centred = matrix - matrix.mean(axis=0)
    sums = np.array([centred[b].sum(axis=0) for b in blocks])  # S x N
    squares = np.array([(centred[b] ** 2).sum(axis=0) for b in blocks])
    counts = np.array([len(b) for b in blocks], dtype=float)
    n_splits = len(blocks)
    chosen = np.zeros((math.comb(n_splits, n_splits // 2), n_splits))
    for row, picked in enumerate(combinations(range(n_splits), n_splits // 2)):
        chosen[row, list(picked)] = 1.0

    def sharpes(mask: np.ndarray) -> np.ndarray:
        n = (mask @ counts)[:, None]
        total, square = mask @ sums, mask @ squares
        mean = total / n
        variance = np.maximum(square - n * mean * mean, 0.0) / (n - 1)
        sd = np.sqrt(variance)
        # the column's overall mean moves every split's mean, not its spread
        shifted = mean + matrix.mean(axis=0)
        return np.where(sd > 0, shifted / np.where(sd > 0, sd, 1.0), 0.0)

    in_sample, out_sample = sharpes(chosen), sharpes(1.0 - chosen)
    best = np.argmax(in_sample, axis=1)
    winner = out_sample[np.arange(len(best)), best][:, None]
    rank = 1 + np.sum(out_sample < winner, axis=1)
    w = rank / (matrix.shape[1] + 1)
    logits = np.log(w / (1 - w))
    return OverfitResult(pbo=float(np.mean(logits <= 0)), logits=tuple(logits.tolist()))


# ----- cross-validation and walk-forward --------------------------------------------------
def purged_kfold(
    n: int, k: int, label_horizon: int = 0, embargo: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs of k contiguous test folds, purged and embargoed.

    Observation i's label spans sessions [i, i + label_horizon]. A training observation
    is purged when its span meets the test folds' span [first, last + label_horizon], and
    embargoed when it starts within `embargo` sessions after that span (AFML 7.4).
    """
    if not 2 <= k <= n:
        raise ValueError("need 2 <= k <= number of observations")
    index = np.arange(n)
    out = []
    for test in np.array_split(index, k):
        start, end = int(test[0]), int(test[-1]) + label_horizon
        overlaps = (index + label_horizon >= start) & (index <= end)
        embargoed = (index > end) & (index <= end + embargo)
        out.append((index[~overlaps & ~embargoed], test))
    return out


def walk_forward_splits(
    n: int, train: int, test: int, anchored: bool = False
) -> list[tuple[range, range]]:
    """Consecutive (train, test) windows stepping by `test`; anchored keeps the start at 0."""
    if train < 2 or test < 1:
        raise ValueError("walk-forward needs train >= 2 and test >= 1 sessions")
    splits = []
    start = 0
    while start + train + test <= n:
        first = 0 if anchored else start
        splits.append((range(first, start + train), range(start + train, start + train + test)))
        start += test
    if not splits:
        raise ValueError(f"walk-forward needs at least {train + test} sessions, have {n}")
    return splits


@dataclass(frozen=True, slots=True)
class WalkForward:
    """Stitched out-of-sample returns and the configuration each fold chose."""

    oos_returns: np.ndarray
    oos_index: np.ndarray
    chosen: tuple[int, ...]


def walk_forward(returns: np.ndarray, train: int, test: int, anchored: bool = False) -> WalkForward:
    """Per fold pick the configuration with the best in-sample Sharpe, then keep its
    returns on the following test window; the test windows are stitched in order.

    `returns` is T x N: the daily returns of N configurations run over the whole span.
    """
    matrix = np.asarray(returns, dtype=float)
    pieces, index, chosen = [], [], []
    for fit, out in walk_forward_splits(matrix.shape[0], train, test, anchored):
        best = int(np.argmax(_sharpe_columns(matrix[fit.start : fit.stop])))
        chosen.append(best)
        pieces.append(matrix[out.start : out.stop, best])
        index.extend(out)
    return WalkForward(np.concatenate(pieces), np.array(index), tuple(chosen))


@dataclass(frozen=True, slots=True)
class CrossValidation:
    """Purged k-fold selection: each test fold's returns from the configuration with the
    best Sharpe on that fold's purged and embargoed training sessions."""

    oos_returns: np.ndarray  # the test folds stitched in session order (all sessions)
    chosen: tuple[int, ...]  # configuration picked for each fold
    fold_sharpes: tuple[float, ...]  # the pick's (daily) Sharpe on its test fold


def cross_validate(
    returns: np.ndarray, k: int, embargo: int = 0, label_horizon: int = 0
) -> CrossValidation:
    """Score a selection rule (best in-sample Sharpe) by purged k-fold CV (AFML ch. 7).

    `returns` is T x N (N configurations over the same sessions). Unlike walk-forward,
    folds before the test fold train on later sessions too; purging drops training
    sessions whose label span meets the test fold and the embargo the `embargo` sessions
    after it, so serial dependence does not leak the test fold into the choice.
    """
    matrix = np.asarray(returns, dtype=float)
    pieces, chosen, sharpes = [], [], []
    for train, test in purged_kfold(matrix.shape[0], k, label_horizon, embargo):
        if train.size < 2:
            raise ValueError(f"a fold has {train.size} training sessions left after purging")
        best = int(np.argmax(_sharpe_columns(matrix[train])))
        chosen.append(best)
        pieces.append(matrix[test, best])
        sharpes.append(float(_sharpe_columns(matrix[test, best][:, None])[0]))
    return CrossValidation(np.concatenate(pieces), tuple(chosen), tuple(sharpes))


def sharpe_variance(trials: Sequence[float]) -> float:
    """Sample variance of the trials' Sharpe ratios (input of the deflated Sharpe)."""
    return float(np.var(np.asarray(trials, dtype=float), ddof=1)) if len(trials) > 1 else 0.0
