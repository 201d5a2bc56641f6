"""The demo market: a seeded synthetic daily OHLCV history for the whole universe.

It is the default data source, so a fresh install can backtest and paper-trade with no
network. The model, per XNYS session t and asset i:

    r[t, i] = mu[t, i] + m[regime_t] * sigma_i * sqrt((nu - 2) / nu) * z[t, i] / sqrt(w_t / nu)

- sigma_i = annual_vol_i / sqrt(252), the asset's base daily volatility.
- z_t ~ N(0, C) with C the universe's target correlation (drawn through its Cholesky factor).
- w_t ~ chi-square(nu), nu = 6, one draw shared by all assets on a day: z / sqrt(w / nu) is
  then a multivariate Student-t with correlation C and fat tails (Kotz & Nadarajah,
  "Multivariate t Distributions", 2004); the sqrt((nu - 2) / nu) factor gives unit variance.
- regime_t is a Markov chain over CALM / TRENDING / CRISIS; m[regime] scales every asset's
  volatility alike (so correlation is untouched) and is normalised so that the stationary
  mean of m^2 is 1, keeping long-run realised volatility at annual_vol.
- mu is the regime's drift: a persistent per-asset trend while TRENDING, a sell-off while in
  CRISIS (gold rallies), and a mild recovery while CALM that offsets crises on average.

Each day's return is split into an overnight gap (30% of the variance) and an intraday move;
highs and lows add a random excursion beyond the open/close; volume grows with the size of
the move. Every random component has its own child stream of `default_rng(seed)` and draws a
fixed amount per day (or per trending spell), so extending `end` leaves earlier bars unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import numpy as np
import polars as pl

from qgtm.core.calendar import sessions
from qgtm.core.universe import Universe

GENERATOR_VERSION: int = 2
"""Bump whenever the same (universe, start, end, seed) would produce different bars."""

TRADING_DAYS_PER_YEAR = 252
# Degrees of freedom of the daily Student-t innovations. The regime mixture fattens the
# unconditional tails further (pooled excess kurtosis ~5, like commodity ETFs), so the
# innovations need not be as heavy as nu = 4: at nu = 4 their fourth moment is infinite and
# 18 years of data cannot pin down the target correlation to 0.08 for most seeds.
STUDENT_T_DOF = 6.0
OVERNIGHT_VARIANCE_SHARE = 0.3
# Gold-like ETFs that rally rather than sell off in a crisis.
SAFE_HAVENS = frozenset({"GLD", "IAU"})


class Regime(StrEnum):
    """The demo market's hidden state; it sets volatility and drift for every asset."""

    CALM = "calm"
    TRENDING = "trending"
    CRISIS = "crisis"


# Index order of the regime codes used internally (definition order, never set/dict order).
_REGIMES: tuple[Regime, ...] = (Regime.CALM, Regime.TRENDING, Regime.CRISIS)

# Daily transition probabilities, rows = today, columns = tomorrow (calm, trending, crisis).
# Expected stay is 1 / (1 - diagonal): calm ~100 sessions (5 months), trending ~180 (9 months,
# like commodity cycles: long enough for 12-1 momentum to earn something), crisis ~20
# (4 weeks). Stationary shares come out near 35% / 57% / 9%.
_TRANSITIONS = np.array(
    [
        [0.9900, 0.0040, 0.0060],
        [0.0015, 0.9945, 0.0040],
        [0.0300, 0.0200, 0.9500],
    ]
)
# Relative volatility per regime before normalisation to unit stationary variance. Crisis
# vol is 2.25x calm: a clear break, yet mild enough that 18 years of realised volatility
# stay within 15% of annual_vol whichever share of days the chain spends in crisis.
_RAW_VOL_MULTIPLIER = np.array([0.8, 1.0, 1.8])
# Trend drift in units of annual_vol per year, drawn uniformly per asset for each spell: big
# enough for a trend follower to find, small enough to leave realised volatility unchanged.
_TREND_DRIFT_RANGE = (0.5, 1.0)
# Crisis drift in units of annual_vol per year: a sell-off, except gold which is bid.
_CRISIS_DRIFT = -2.0
_SAFE_HAVEN_CRISIS_DRIFT = 0.5
# High/low excursion beyond max/min(open, close) is half-normal with this scale (in units of
# the day's intraday sigma): for Brownian motion the expected excursion is about 0.4 sigma.
_EXCURSION_SCALE = 0.5
_VOLUME_NOISE_SIGMA = 0.3
# Volume rises by this fraction per base-sigma of absolute return.
_VOLUME_MOVE_SENSITIVITY = 0.5
_MIN_PRICE = 1e-4


@dataclass(frozen=True, slots=True)
class DemoMarket:
    """A generated market: daily bars for every symbol plus the hidden regime path.

    `bars` has columns symbol, date, open, high, low, close, volume, sorted by date then
    symbol in universe order; `regimes` has columns date, regime (a `Regime` value).
    """

    bars: pl.DataFrame
    regimes: pl.DataFrame
    seed: int


@dataclass(frozen=True, slots=True)
class _Streams:
    """One independent random stream per model component (see the module docstring)."""

    regime: np.random.Generator
    trend_sign: np.random.Generator
    trend_size: np.random.Generator
    mixing: np.random.Generator
    shocks: np.random.Generator
    excursion: np.random.Generator
    volume: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int) -> _Streams:
        # Field order fixes which child feeds which component: append new fields, never reorder.
        return cls(*np.random.default_rng(seed).spawn(len(cls.__slots__)))


def generate_demo_market(universe: Universe, start: date, end: date, seed: int) -> DemoMarket:
    """Generate the demo market over the XNYS sessions from `start` to `end` inclusive.

    Deterministic in (universe, start, seed, GENERATOR_VERSION): the same arguments give
    bit-identical bars, and a later `end` only appends bars. The first close of each symbol
    is its `start_price`. See the module docstring for the model.
    """
    days = sessions(start, end)
    if not days:
        raise ValueError(f"no XNYS sessions between {start} and {end}; widen the date range")
    streams = _Streams.from_seed(seed)
    symbols = universe.symbols
    annual_vol = np.array([i.annual_vol for i in universe.instruments])
    sigma = annual_vol / np.sqrt(TRADING_DAYS_PER_YEAR)
    factor = _correlation_factor(universe.correlation)

    regime = _simulate_regimes(streams.regime, len(days))
    drift = _regime_drift(streams, regime, annual_vol, symbols, factor)
    day_scale = _vol_multipliers()[regime] * _student_t_scale(streams.mixing, len(days))
    overnight, intraday = _split_returns(streams.shocks, drift, day_scale, sigma, factor)
    log_return = overnight + intraday

    start_price = np.array([i.start_price for i in universe.instruments])
    # Anchor the first close at start_price; day 0's own return only shapes its open.
    log_close = np.log(start_price) + np.cumsum(log_return, axis=0) - log_return[0]
    log_open = log_close - intraday
    intraday_sigma = np.sqrt(1.0 - OVERNIGHT_VARIANCE_SHARE) * day_scale[:, None] * sigma
    log_high, log_low = _intraday_extremes(streams.excursion, log_open, log_close, intraday_sigma)
    volume = _volume(streams.volume, universe, log_return, sigma)

    bars = _bars_frame(days, symbols, log_open, log_high, log_low, log_close, volume)
    regimes = pl.DataFrame(
        {"date": days, "regime": [_REGIMES[code].value for code in regime]},
        schema={"date": pl.Date, "regime": pl.String},
    )
    return DemoMarket(bars=bars, regimes=regimes, seed=seed)


def _correlation_factor(correlation: np.ndarray) -> np.ndarray:
    """Lower-triangular L with L @ L.T = correlation (eigenvalues floored if Cholesky fails)."""
    try:
        return np.linalg.cholesky(correlation)
    except np.linalg.LinAlgError:
        # A merely semi-definite matrix (rounding at the edge) fails Cholesky; nudge it inside.
        values, vectors = np.linalg.eigh(correlation)
        repaired = vectors @ np.diag(np.clip(values, 1e-8, None)) @ vectors.T
        scale = np.sqrt(np.diag(repaired))
        return np.linalg.cholesky(repaired / np.outer(scale, scale))


def _stationary_distribution(transitions: np.ndarray) -> np.ndarray:
    """pi with pi @ P = pi and sum(pi) = 1."""
    n = len(transitions)
    system = transitions.T - np.eye(n)
    system[-1] = 1.0
    rhs = np.zeros(n)
    rhs[-1] = 1.0
    return np.linalg.solve(system, rhs)


def _vol_multipliers() -> np.ndarray:
    """Per-regime volatility multipliers m with sum(pi * m^2) = 1 under the stationary pi."""
    pi = _stationary_distribution(_TRANSITIONS)
    return _RAW_VOL_MULTIPLIER / np.sqrt(pi @ _RAW_VOL_MULTIPLIER**2)


def _simulate_regimes(rng: np.random.Generator, n_days: int) -> np.ndarray:
    """Regime codes (indices into _REGIMES) per day; day 0 drawn from the stationary law."""
    uniforms = rng.random(n_days)
    initial_cdf = np.cumsum(_stationary_distribution(_TRANSITIONS))
    transition_cdf = np.cumsum(_TRANSITIONS, axis=1)
    # A cumulative sum can end a hair below 1; clamp so such a draw lands in the last state.
    last = len(_REGIMES) - 1
    codes = np.empty(n_days, dtype=np.int64)
    state = min(int(np.searchsorted(initial_cdf, uniforms[0], side="right")), last)
    codes[0] = state
    # A Markov chain is inherently sequential; ~4,500 scalar steps cost a few milliseconds.
    for day in range(1, n_days):
        row = transition_cdf[state]
        state = min(int(np.searchsorted(row, uniforms[day], side="right")), last)
        codes[day] = state
    return codes


def _regime_drift(
    streams: _Streams,
    regime: np.ndarray,
    annual_vol: np.ndarray,
    symbols: tuple[str, ...],
    factor: np.ndarray,
) -> np.ndarray:
    """Daily log drift per (day, asset) implied by the regime path.

    TRENDING: each spell draws a direction per asset as the sign of a correlated normal (so
    GLD and IAU trend together) and a size in _TREND_DRIFT_RANGE x annual_vol per year.
    CRISIS: _CRISIS_DRIFT x annual_vol per year, safe havens _SAFE_HAVEN_CRISIS_DRIFT.
    CALM: the drift that makes the stationary mean drift zero, so prices do not wander off
    over decades.
    """
    n_days, n_assets = len(regime), len(annual_vol)
    per_day = annual_vol / TRADING_DAYS_PER_YEAR
    calm, trending, crisis = range(len(_REGIMES))
    pi = _stationary_distribution(_TRANSITIONS)

    haven = np.array([s in SAFE_HAVENS for s in symbols])
    crisis_drift = np.where(haven, _SAFE_HAVEN_CRISIS_DRIFT, _CRISIS_DRIFT) * per_day
    calm_drift = -pi[crisis] * crisis_drift / pi[calm]
    drift = np.zeros((n_days, n_assets))
    drift[regime == crisis] = crisis_drift
    drift[regime == calm] = calm_drift

    is_trending = regime == trending
    spell_start = is_trending & ~np.r_[False, is_trending[:-1]]
    n_spells = int(spell_start.sum())
    if n_spells == 0:
        return drift
    direction = np.sign(streams.trend_sign.standard_normal((n_spells, n_assets)) @ factor.T)
    size = streams.trend_size.uniform(*_TREND_DRIFT_RANGE, size=(n_spells, n_assets))
    spell_of_day = np.cumsum(spell_start) - 1
    drift[is_trending] = (direction * size * per_day)[spell_of_day[is_trending]]
    return drift


def _student_t_scale(rng: np.random.Generator, n_days: int) -> np.ndarray:
    """sqrt((nu - 2) / nu) / sqrt(w / nu) per day, w ~ chi-square(nu): the unit-variance
    multivariate-t mixing factor shared by all assets."""
    nu = STUDENT_T_DOF
    chi_square = rng.chisquare(nu, size=n_days)
    return np.sqrt((nu - 2.0) / nu) / np.sqrt(chi_square / nu)


def _split_returns(
    rng: np.random.Generator,
    drift: np.ndarray,
    day_scale: np.ndarray,
    sigma: np.ndarray,
    factor: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Overnight and intraday log returns whose sum is the model's daily return.

    Both halves use independent N(0, C) draws and the same day's t mixing factor, so their
    sum is exactly the multivariate t of the module docstring.
    """
    n_days, n_assets = drift.shape
    # One (2, n_assets) block per day keeps the stream prefix-stable as `end` grows.
    normals = rng.standard_normal((n_days, 2, n_assets)) @ factor.T
    scale = day_scale[:, None] * sigma
    share = OVERNIGHT_VARIANCE_SHARE
    overnight = share * drift + np.sqrt(share) * scale * normals[:, 0]
    intraday = (1.0 - share) * drift + np.sqrt(1.0 - share) * scale * normals[:, 1]
    return overnight, intraday


def _intraday_extremes(
    rng: np.random.Generator,
    log_open: np.ndarray,
    log_close: np.ndarray,
    intraday_sigma: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Log high and low: the open/close envelope widened by half-normal excursions."""
    n_days, n_assets = log_open.shape
    excursion = np.abs(rng.standard_normal((n_days, 2, n_assets)))
    excursion *= _EXCURSION_SCALE * intraday_sigma[:, None, :]
    log_high = np.maximum(log_open, log_close) + excursion[:, 0]
    log_low = np.minimum(log_open, log_close) - excursion[:, 1]
    return log_high, log_low


def _volume(
    rng: np.random.Generator,
    universe: Universe,
    log_return: np.ndarray,
    sigma: np.ndarray,
) -> np.ndarray:
    """Shares traded: adv * lognormal(0.3) * (1 + k |r| / sigma) / (1 + k E|z|), at least 1.

    Using the base sigma (not the regime's) makes crisis days trade more; the divisor keeps
    the typical day near adv.
    """
    adv = np.array([i.adv for i in universe.instruments], dtype=np.float64)
    s = _VOLUME_NOISE_SIGMA
    noise = np.exp(s * rng.standard_normal(log_return.shape) - 0.5 * s * s)
    k = _VOLUME_MOVE_SENSITIVITY
    activity = (1.0 + k * np.abs(log_return) / sigma) / (1.0 + k * np.sqrt(2.0 / np.pi))
    return np.maximum(np.rint(adv * noise * activity), 1.0).astype(np.int64)


def _bars_frame(
    days: list[date],
    symbols: tuple[str, ...],
    log_open: np.ndarray,
    log_high: np.ndarray,
    log_low: np.ndarray,
    log_close: np.ndarray,
    volume: np.ndarray,
) -> pl.DataFrame:
    """Long-format bars, date-major then universe order (a row-major ravel of (day, asset))."""
    n_assets = len(symbols)

    def price(log_price: np.ndarray) -> np.ndarray:
        # Rounding is monotone, so high >= open/close >= low survives it.
        return np.maximum(np.round(np.exp(log_price), 4), _MIN_PRICE).ravel()

    return pl.DataFrame(
        {
            "symbol": np.tile(np.array(symbols, dtype=object), len(days)),
            "date": pl.Series(days, dtype=pl.Date).gather(
                np.repeat(np.arange(len(days)), n_assets)
            ),
            "open": price(log_open),
            "high": price(log_high),
            "low": price(log_low),
            "close": price(log_close),
            "volume": volume.ravel(),
        },
        schema={
            "symbol": pl.String,
            "date": pl.Date,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Int64,
        },
    )
