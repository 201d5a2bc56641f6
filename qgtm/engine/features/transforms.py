"""Pure feature transforms over aligned price arrays (rows = sessions, columns = symbols).

Every function takes arrays of shape (T, N) (or (T,)) and returns an array of the same
number of rows, row t using only rows <= t, NaN where the window is not yet full. They are
the one place the maths lives: strategies call them on point-in-time views, and the
feature store (`qgtm.engine.features.store`) caches their output by name and version.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import maximum_filter1d, minimum_filter1d
from scipy.signal import lfilter

TRADING_DAYS = 252


def _pad_front(values: np.ndarray, rows: int) -> np.ndarray:
    """Prepend `rows` NaN rows so a windowed result lines up with its input."""
    pad = np.full((rows, *values.shape[1:]), np.nan)
    return np.concatenate([pad, values], axis=0)


def log_returns(close: np.ndarray) -> np.ndarray:
    """r_t = ln(P_t / P_{t-1}); row 0 is NaN."""
    return _pad_front(np.diff(np.log(close), axis=0), 1)


def horizon_return(close: np.ndarray, horizon: int, skip: int = 0) -> np.ndarray:
    """ln(P_{t-skip} / P_{t-horizon}): the multi-horizon momentum return (skip excludes the
    most recent `skip` sessions, e.g. 12-1 momentum is horizon 252, skip 21)."""
    log_close = np.log(close)
    out = np.full(close.shape, np.nan)
    if horizon < len(close):
        out[horizon:] = log_close[horizon - skip : len(close) - skip] - log_close[:-horizon]
    return out


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average over the last `window` rows."""
    if len(values) < window:
        return np.full(values.shape, np.nan)
    return _pad_front(sliding_window_view(values, window, axis=0).mean(axis=-1), window - 1)


def rolling_std(values: np.ndarray, window: int, ddof: int = 1) -> np.ndarray:
    """Sample standard deviation over the last `window` rows."""
    if len(values) < window:
        return np.full(values.shape, np.nan)
    view = sliding_window_view(values, window, axis=0)
    return _pad_front(view.std(axis=-1, ddof=ddof), window - 1)


def rolling_max(values: np.ndarray, window: int) -> np.ndarray:
    """Maximum over the last `window` rows (O(T) van Herk/Gil-Werman filter via scipy)."""
    if len(values) < window:
        return np.full(values.shape, np.nan)
    # origin shifts the centred filter so row t covers rows t - window + 1 .. t.
    out = maximum_filter1d(values, window, axis=0, origin=(window - 1) // 2, mode="nearest")
    out = out.astype(float)
    out[: window - 1] = np.nan
    return out


def rolling_min(values: np.ndarray, window: int) -> np.ndarray:
    """Minimum over the last `window` rows."""
    if len(values) < window:
        return np.full(values.shape, np.nan)
    out = minimum_filter1d(values, window, axis=0, origin=(window - 1) // 2, mode="nearest")
    out = out.astype(float)
    out[: window - 1] = np.nan
    return out


def ema(values: np.ndarray, span: float | None = None, alpha: float | None = None) -> np.ndarray:
    """Exponential moving average e_t = a x_t + (1 - a) e_{t-1}, e_0 = x_0.

    a = 2 / (span + 1) (the usual span convention) unless `alpha` is given.
    """
    a = alpha if alpha is not None else 2.0 / (float(span or 1) + 1.0)
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return values.copy()
    initial = values[0] * (1.0 - a)
    zi = np.expand_dims(initial, 0) if values.ndim > 1 else np.array([initial])
    out, _ = lfilter([a], [1.0, -(1.0 - a)], values, axis=0, zi=zi)
    return out


def realised_vol(close: np.ndarray, window: int) -> np.ndarray:
    """Annualised stdev of the last `window` daily log returns, s * sqrt(252); row t uses
    returns up to t."""
    returns = log_returns(close)
    return rolling_std(returns, window) * np.sqrt(TRADING_DAYS)


def ewma_vol(close: np.ndarray, lam: float = 0.94) -> np.ndarray:
    """RiskMetrics EWMA volatility, annualised: s2_t = lam s2_{t-1} + (1 - lam) r_t^2
    (J.P. Morgan RiskMetrics Technical Document, 1996, lambda = 0.94 for daily data)."""
    returns = np.nan_to_num(log_returns(close))
    variance = ema(returns**2, alpha=1.0 - lam)
    out = np.sqrt(variance * TRADING_DAYS)
    out[:1] = np.nan
    return out


def drawdown(close: np.ndarray) -> np.ndarray:
    """P_t / max_{s<=t} P_s - 1 (0 at a new high, negative below it)."""
    return close / np.maximum.accumulate(close, axis=0) - 1.0


def zscore(values: np.ndarray, window: int) -> np.ndarray:
    """(x_t - mean) / stdev over the last `window` rows (sample stdev)."""
    mean = rolling_mean(values, window)
    std = rolling_std(values, window)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, (values - mean) / std, np.nan)


def rolling_corr(a: np.ndarray, b: np.ndarray, window: int) -> np.ndarray:
    """Pearson correlation of two series over the last `window` rows."""
    if len(a) < window:
        return np.full(a.shape, np.nan)
    va = sliding_window_view(a, window, axis=0)
    vb = sliding_window_view(b, window, axis=0)
    da = va - va.mean(axis=-1, keepdims=True)
    db = vb - vb.mean(axis=-1, keepdims=True)
    denom = np.sqrt((da * da).sum(axis=-1) * (db * db).sum(axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(denom > 0, (da * db).sum(axis=-1) / denom, np.nan)
    return _pad_front(corr, window - 1)


def average_correlation(returns: np.ndarray) -> float:
    """Mean off-diagonal Pearson correlation of the columns of a (T, N) return window."""
    finite = returns[np.isfinite(returns).all(axis=1)]
    if len(finite) < 3 or finite.shape[1] < 2:
        return float("nan")
    std = finite.std(axis=0)
    finite = finite[:, std > 0]
    n = finite.shape[1]
    if n < 2:
        return float("nan")
    corr = np.corrcoef(finite, rowvar=False)
    return float((corr.sum() - n) / (n * (n - 1)))


def rolling_average_correlation(close: np.ndarray, window: int) -> np.ndarray:
    """Average pairwise Pearson correlation of daily log returns over the last `window`
    rows: the correlation regime (it spikes in sell-offs when everything moves together).

    Vectorised with running sums: for each window, cov_ij = S_ij / w - m_i m_j.
    """
    returns = np.diff(np.log(close), axis=0)
    out = np.full(len(close), np.nan)
    n_assets = returns.shape[1]
    if len(returns) < window or n_assets < 2:
        return out
    first = np.cumsum(np.r_[np.zeros((1, n_assets)), returns], axis=0)
    outer = returns[:, :, None] * returns[:, None, :]
    second = np.cumsum(np.concatenate([np.zeros((1, n_assets, n_assets)), outer]), axis=0)
    mean = (first[window:] - first[:-window]) / window
    cov = (second[window:] - second[:-window]) / window - mean[:, :, None] * mean[:, None, :]
    var = np.clip(np.diagonal(cov, axis1=1, axis2=2), 0.0, None)
    scale = np.sqrt(var[:, :, None] * var[:, None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.where(scale > 0, cov / scale, np.nan)
    total = corr.sum(axis=(1, 2)) - np.trace(corr, axis1=1, axis2=2)
    out[window:] = total / (n_assets * (n_assets - 1))
    return out


def rolling_weighted_correlation(close: np.ndarray, window: int) -> np.ndarray:
    """Volatility-weighted average pairwise correlation over the last `window` rows:
    rho = (var(sum_i r_i) - sum_i s_i^2) / ((sum_i s_i)^2 - sum_i s_i^2), the formula of
    the CBOE implied-correlation index applied to realised variances. O(T N), so cheap
    enough to run on every decision."""
    returns = np.diff(np.log(close), axis=0)
    out = np.full(len(close), np.nan)
    if len(returns) < window or returns.shape[1] < 2:
        return out
    asset_var = rolling_std(returns, window)[window - 1 :] ** 2
    basket_var = rolling_std(returns.sum(axis=1), window)[window - 1 :] ** 2
    own = asset_var.sum(axis=1)
    cross = np.sqrt(asset_var).sum(axis=1) ** 2 - own
    with np.errstate(divide="ignore", invalid="ignore"):
        out[window:] = np.where(cross > 0, (basket_var - own) / cross, np.nan)
    return out


def rolling_hedge_ratio(log_a: np.ndarray, log_b: np.ndarray, window: int) -> np.ndarray:
    """OLS slope of log_a on log_b over the last `window` rows:
    beta = cov(a, b) / var(b) (the rolling hedge ratio of a pair)."""
    if len(log_a) < window:
        return np.full(log_a.shape, np.nan)
    va = sliding_window_view(log_a, window)
    vb = sliding_window_view(log_b, window)
    db = vb - vb.mean(axis=-1, keepdims=True)
    denom = (db * db).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(
            denom > 0, (db * (va - va.mean(axis=-1, keepdims=True))).sum(-1) / denom, np.nan
        )
    return _pad_front(beta, window - 1)


def term_structure_proxy(front: np.ndarray, deferred: np.ndarray, window: int) -> np.ndarray:
    """ln(F_t / D_t) - ln(F_{t-w} / D_{t-w}): relative performance of a front-month fund
    (USO, WTI front month) against one rolling further out or into another curve (BNO).

    A front-month fund that lags persistently is paying contango roll; one that leads is
    earning backwardation (Gorton & Rouwenhorst 2006; Erb & Harvey 2006 on roll yield).
    """
    ratio = np.log(front) - np.log(deferred)
    out = np.full(ratio.shape, np.nan)
    if window < len(ratio):
        out[window:] = ratio[window:] - ratio[:-window]
    return out


def rsi(close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's RSI = 100 - 100 / (1 + avg gain / avg loss), Wilder smoothing a = 1/period
    (Wilder, New Concepts in Technical Trading Systems, 1978)."""
    change = np.diff(close, axis=0)
    gains = ema(np.clip(change, 0, None), alpha=1.0 / period)
    losses = ema(np.clip(-change, 0, None), alpha=1.0 / period)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(losses > 0, 100.0 - 100.0 / (1.0 + gains / losses), 100.0)
        value = np.where((gains == 0) & (losses == 0), 50.0, value)
    out = _pad_front(value, 1)
    out[:period] = np.nan
    return out


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """max(H - L, |H - C_{t-1}|, |L - C_{t-1}|); row 0 is H - L."""
    prev = np.concatenate([close[:1], close[:-1]], axis=0)
    return np.maximum.reduce([high - low, np.abs(high - prev), np.abs(low - prev)])


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Average true range with Wilder smoothing (a = 1/period)."""
    return ema(true_range(high, low, close), alpha=1.0 / period)


def efficiency_ratio(close: np.ndarray, window: int) -> np.ndarray:
    """Kaufman efficiency ratio |P_t - P_{t-w}| / sum |P_s - P_{s-1}| over the window:
    1 for a straight line, near 0 for a choppy range (Kaufman, Trading Systems and
    Methods)."""
    if len(close) <= window:
        return np.full(close.shape, np.nan)
    net = np.abs(close[window:] - close[:-window])
    path = np.abs(np.diff(close, axis=0))
    cumulative = np.concatenate([np.zeros((1, *close.shape[1:])), np.cumsum(path, axis=0)])
    total = cumulative[window:] - cumulative[:-window]
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(total > 0, net / total, 0.0)
    return _pad_front(value, window)
