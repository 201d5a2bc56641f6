"""Trend following: time-series momentum variants, cross-sectional momentum, moving-average
and breakout rules. Each class is one registered strategy."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import numpy as np

from qgtm.core.universe import load_universe
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features import transforms as tf
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.strategies.base import (
    CRISIS,
    MEAN_REVERTING,
    TRENDING,
    Parameter,
    RuleStrategy,
    VolSized,
    vol_sizing,
)

_CAP = Parameter("max_weight", 1.0, 0.1, 5.0, "cap on the vol-scaled weight")
_SIZING = (*vol_sizing(0.20), _CAP)


# ----- time-series momentum -----------------------------------------------------------
class _TsmomHorizon(VolSized):
    """Long when the log return over `lookback` sessions (ending `skip` sessions ago) is
    positive, short when negative, vol scaled. Confidence: |r| / (sigma_d sqrt(L - skip))."""

    family = "time-series momentum"
    reference = "Moskowitz, Ooi, Pedersen (2012), Time series momentum, JFE 104(2)"
    factor_exposures: ClassVar[dict[str, float]] = {"trend": 1.0}
    capacity_usd = 200_000_000.0
    features = ("horizon_return", "realised_vol")
    regimes = (TRENDING, CRISIS)
    default_lookback: ClassVar[int] = 63

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.parameters = (
            Parameter("lookback", cls.default_lookback, 10, 504, "sessions in the window"),
            Parameter("skip", 0, 0, 63, "most recent sessions excluded"),
            *_SIZING,
        )

    @property
    def warmup(self) -> int:
        """Lookback (or the vol window) plus one return."""
        return int(max(self.params["lookback"], self.params["vol_window"])) + 1

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        lookback, skip = int(self.params["lookback"]), int(self.params["skip"])
        momentum = tf.horizon_return(view.close, lookback, skip)[-1]
        daily = np.diff(np.log(view.close[-int(self.params["vol_window"]) - 1 :]), axis=0)
        spread = daily.std(axis=0, ddof=1) * np.sqrt(lookback - skip)
        with np.errstate(divide="ignore", invalid="ignore"):
            confidence = np.abs(momentum) / spread
        return np.sign(momentum) * self.size(view.close), confidence, f"{lookback}d momentum"


class Tsmom1M(_TsmomHorizon):
    """1-month time-series momentum, volatility scaled."""

    name = "tsmom_1m"
    description = "1-month time-series momentum, volatility scaled"
    default_lookback = 21


class Tsmom3M(_TsmomHorizon):
    """3-month time-series momentum, volatility scaled."""

    name = "tsmom_3m"
    description = "3-month time-series momentum, volatility scaled"
    default_lookback = 63


class Tsmom6M(_TsmomHorizon):
    """6-month time-series momentum, volatility scaled."""

    name = "tsmom_6m"
    description = "6-month time-series momentum, volatility scaled"
    default_lookback = 126


class TsmomBlend(VolSized):
    """Average of the signs of the 1-, 3- and 12-month returns, times the vol-scaled size:
    +1 when all three agree up, -1/3 when one of three is up (Hurst, Ooi, Pedersen 2017
    combine 1-, 3- and 12-month trends equally)."""

    name = "tsmom_blend"
    family = "time-series momentum"
    description = "equal blend of 1, 3 and 12-month trend signs, volatility scaled"
    reference = "Hurst, Ooi, Pedersen (2017), A century of evidence on trend-following investing"
    parameters = _SIZING
    factor_exposures: ClassVar[dict[str, float]] = {"trend": 1.0}
    capacity_usd = 250_000_000.0
    features = ("horizon_return", "realised_vol")
    regimes = (TRENDING, CRISIS)

    @property
    def warmup(self) -> int:
        """Twelve months plus one return."""
        return 253

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        votes = np.mean([np.sign(tf.horizon_return(view.close, h)[-1]) for h in (21, 63, 252)], 0)
        return votes * self.size(view.close), np.abs(votes), "1/3/12m trend vote"


class TsmomTStat(VolSized):
    """t-statistic of the mean daily log return over `lookback` sessions,
    t = mean / (stdev / sqrt(n)); long above +threshold, short below -threshold, flat
    between (Baltas & Kosowski 2013, 'TREND' signal)."""

    name = "tsmom_tstat"
    family = "time-series momentum"
    description = "trend t-statistic with a no-trade band, volatility scaled"
    reference = (
        "Baltas, Kosowski (2013), Momentum strategies in futures markets and trend-following funds"
    )
    parameters = (
        Parameter("lookback", 126, 21, 504, "sessions of daily returns"),
        Parameter("threshold", 1.0, 0.0, 3.0, "|t| needed to trade"),
        *_SIZING,
    )
    factor_exposures: ClassVar[dict[str, float]] = {"trend": 1.0}
    capacity_usd = 200_000_000.0
    features = ("log_returns",)
    regimes = (TRENDING, CRISIS)

    @property
    def warmup(self) -> int:
        """Lookback plus one return."""
        return int(max(self.params["lookback"], self.params["vol_window"])) + 1

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        n = int(self.params["lookback"])
        daily = np.diff(np.log(view.close[-n - 1 :]), axis=0)
        std = daily.std(axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_stat = np.where(std > 0, daily.mean(axis=0) / (std / np.sqrt(n)), 0.0)
        direction = np.where(np.abs(t_stat) > self.params["threshold"], np.sign(t_stat), 0.0)
        return direction * self.size(view.close), np.abs(t_stat) / 3.0, "trend t-stat"


# ----- cross-sectional momentum ---------------------------------------------------------
def tercile_positions(score: np.ndarray, fraction: float = 1 / 3) -> np.ndarray:
    """+1/k for the top k = max(1, round(fraction * N)) scores, -1/k for the bottom k,
    0 otherwise (NaN scores get NaN). Ties broken by column order."""
    out = np.full(score.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(score))
    if len(finite) < 2:
        return out
    k = max(1, round(fraction * len(finite)))
    k = min(k, len(finite) // 2)
    order = finite[np.argsort(score[finite], kind="stable")]
    out[finite] = 0.0
    out[order[-k:]] = 1.0 / k
    out[order[:k]] = -1.0 / k
    return out


class _XsMomentum(RuleStrategy):
    """Rank the universe by the log return over `lookback` (skipping `skip`); long the top
    third, short the bottom third, equal weight 1/k per name."""

    family = "cross-sectional momentum"
    factor_exposures: ClassVar[dict[str, float]] = {"momentum": 1.0, "market": 0.0}
    capacity_usd = 150_000_000.0
    features = ("horizon_return",)
    regimes = (TRENDING, CRISIS)
    default_lookback: ClassVar[int] = 252
    default_skip: ClassVar[int] = 21

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.parameters = (
            Parameter("lookback", cls.default_lookback, 21, 504, "sessions ranked over"),
            Parameter("skip", cls.default_skip, 0, 63, "most recent sessions excluded"),
        )

    @property
    def warmup(self) -> int:
        """Lookback plus one."""
        return int(self.params["lookback"]) + 1

    def score(self, view: PricePanel) -> np.ndarray:
        """The ranking variable (higher = long)."""
        return tf.horizon_return(
            view.close, int(self.params["lookback"]), int(self.params["skip"])
        )[-1]

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        score = self.score(view)
        position = tercile_positions(score)
        return position, np.where(position != 0, 1.0, 0.0), "cross-sectional rank"


class XsMomentum12M(_XsMomentum):
    """Cross-sectional 12-1 month momentum, top vs bottom third."""

    name = "xsmom_12_1"
    description = "cross-sectional 12-1 month momentum, top vs bottom third"
    reference = "Asness, Moskowitz, Pedersen (2013), Value and momentum everywhere, JF 68(3)"


class XsMomentum6M(_XsMomentum):
    """Cross-sectional 6-month momentum, top vs bottom third."""

    name = "xsmom_6m"
    description = "cross-sectional 6-month momentum, top vs bottom third"
    reference = "Miffre, Rallis (2007), Momentum strategies in commodity futures markets, JBF 31(6)"
    default_lookback = 126
    default_skip = 0


class XsMomentumSector(_XsMomentum):
    """Within each sector with two or more members, long the best and short the worst
    3-month performer (weight 1/number of such sectors): momentum net of sector moves."""

    name = "xsmom_sector"
    description = "within-sector 3-month momentum: best long, worst short per sector"
    reference = (
        "Moskowitz, Grinblatt (1999), Do industries explain momentum?, JF "
        "54(4) (within-industry momentum)"
    )
    default_lookback = 63
    default_skip = 0
    factor_exposures: ClassVar[dict[str, float]] = {"momentum": 1.0, "sector": 0.0}

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        score = self.score(view)
        universe = load_universe()
        sector_of = {s: universe.sector_of(s) for s in universe.symbols}
        groups: dict[str, list[int]] = {}
        for i, symbol in enumerate(view.symbols):
            if symbol in sector_of and np.isfinite(score[i]):
                groups.setdefault(sector_of[symbol], []).append(i)
        groups = {k: v for k, v in groups.items() if len(v) >= 2}
        position = np.full(len(view.symbols), np.nan)
        for members in groups.values():
            position[members] = 0.0
            ranked = sorted(members, key=lambda i: score[i])
            position[ranked[-1]] = 1.0 / len(groups)
            position[ranked[0]] = -1.0 / len(groups)
        return position, np.where(position != 0, 1.0, 0.0), "within-sector rank"


# ----- moving averages --------------------------------------------------------------------
class SmaCross(VolSized):
    """Long when SMA(fast) > SMA(slow), short when below (the 'golden/death cross')."""

    name = "sma_cross"
    family = "moving-average trend"
    description = "50/200-day simple moving-average crossover, volatility scaled"
    reference = "Brock, Lakonishok, LeBaron (1992), Simple technical trading rules, JF 47(5)"
    parameters = (
        Parameter("fast", 50, 5, 100, "fast SMA sessions"),
        Parameter("slow", 200, 50, 300, "slow SMA sessions"),
        *_SIZING,
    )
    factor_exposures: ClassVar[dict[str, float]] = {"trend": 1.0}
    capacity_usd = 300_000_000.0
    features = ("sma",)
    regimes = (TRENDING, CRISIS)

    @property
    def warmup(self) -> int:
        """The slow window (and the vol window) plus one."""
        return int(max(self.params["slow"], self.params["vol_window"])) + 1

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        fast = view.close[-int(self.params["fast"]) :].mean(axis=0)
        slow = view.close[-int(self.params["slow"]) :].mean(axis=0)
        gap = fast / slow - 1.0
        return np.sign(gap) * self.size(view.close), np.clip(np.abs(gap) * 10, 0, 1), "SMA gap"


class EmaCross(VolSized):
    """Long when EMA(fast) > EMA(slow), short below; EMAs over the last 4 x slow sessions."""

    name = "ema_cross"
    family = "moving-average trend"
    description = "20/100-day exponential moving-average crossover, volatility scaled"
    reference = (
        "Lempérière et al. (2014), Two centuries of trend following, J. Investment Strategies 3(3)"
    )
    parameters = (
        Parameter("fast", 20, 5, 60, "fast EMA span"),
        Parameter("slow", 100, 30, 250, "slow EMA span"),
        *_SIZING,
    )
    factor_exposures: ClassVar[dict[str, float]] = {"trend": 1.0}
    capacity_usd = 300_000_000.0
    features = ("ema",)
    regimes = (TRENDING, CRISIS)

    @property
    def warmup(self) -> int:
        """Four slow spans so the EMA has forgotten its start."""
        return int(4 * self.params["slow"])

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        fast = tf.ema(view.close, span=self.params["fast"])[-1]
        slow = tf.ema(view.close, span=self.params["slow"])[-1]
        gap = fast / slow - 1.0
        return np.sign(gap) * self.size(view.close), np.clip(np.abs(gap) * 10, 0, 1), "EMA gap"


class Sma200Filter(VolSized):
    """Long-only: hold when the close is above its 200-day SMA, flat below."""

    name = "sma200_filter"
    family = "moving-average trend"
    description = "long above the 200-day moving average, flat below (tactical allocation)"
    reference = (
        "Faber (2007), A quantitative approach to tactical asset allocation, J. Wealth Management"
    )
    parameters = (Parameter("window", 200, 50, 300, "SMA sessions"), *_SIZING)
    factor_exposures: ClassVar[dict[str, float]] = {"trend": 0.5, "market": 0.5}
    capacity_usd = 500_000_000.0
    features = ("sma",)
    regimes = (TRENDING, MEAN_REVERTING, CRISIS)

    @property
    def warmup(self) -> int:
        """The SMA window (and the vol window) plus one."""
        return int(max(self.params["window"], self.params["vol_window"])) + 1

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        sma = view.close[-int(self.params["window"]) :].mean(axis=0)
        above = view.close[-1] > sma
        return np.where(above, 1.0, 0.0) * self.size(view.close), above.astype(float), "vs SMA"


class Macd(VolSized):
    """MACD histogram = (EMA12 - EMA26) - EMA9 of that; long when positive, short when
    negative (Appel, Technical Analysis: Power Tools for Active Investors, 2005)."""

    name = "macd"
    family = "moving-average trend"
    description = "MACD(12, 26, 9) histogram sign, volatility scaled"
    reference = "Appel (2005), Technical Analysis: Power Tools for Active Investors"
    parameters = (
        Parameter("fast", 12, 5, 30, "fast EMA span"),
        Parameter("slow", 26, 15, 60, "slow EMA span"),
        Parameter("signal", 9, 3, 20, "signal-line EMA span"),
        *_SIZING,
    )
    factor_exposures: ClassVar[dict[str, float]] = {"trend": 0.7}
    capacity_usd = 200_000_000.0
    features = ("ema",)
    regimes = (TRENDING,)

    @property
    def warmup(self) -> int:
        """Enough sessions for the EMAs to settle."""
        return int(max(5 * self.params["slow"], self.params["vol_window"] + 1))

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        line = tf.ema(view.close, span=self.params["fast"]) - tf.ema(
            view.close, span=self.params["slow"]
        )
        histogram = line - tf.ema(line, span=self.params["signal"])
        scale = view.close[-1] * 0.01
        return (
            np.sign(histogram[-1]) * self.size(view.close),
            np.clip(np.abs(histogram[-1]) / scale, 0, 1),
            "MACD histogram",
        )


# ----- breakouts ------------------------------------------------------------------------------
def latest_breakout(upper_hit: np.ndarray, lower_hit: np.ndarray) -> np.ndarray:
    """Per column: +1 if the most recent event in the window was an upper break, -1 if a
    lower break, 0 if neither happened (a stateless replay of a stop-and-reverse system)."""
    rows = np.arange(1, len(upper_hit) + 1)[:, None]
    last_up = np.max(np.where(upper_hit, rows, 0), axis=0)
    last_down = np.max(np.where(lower_hit, rows, 0), axis=0)
    return np.sign(last_up - last_down).astype(float)


class _Donchian(VolSized):
    """Long after the close breaks above the prior `channel`-session high, short after it
    breaks below the prior low; the most recent break within `memory` sessions decides."""

    family = "breakout trend"
    factor_exposures: ClassVar[dict[str, float]] = {"trend": 1.0}
    capacity_usd = 250_000_000.0
    features = ("rolling_max", "rolling_min")
    regimes = (TRENDING, CRISIS)
    default_channel: ClassVar[int] = 20

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.parameters = (
            Parameter("channel", cls.default_channel, 5, 120, "channel sessions"),
            Parameter(
                "memory", 4 * cls.default_channel, 10, 480, "sessions searched for the last break"
            ),
            *_SIZING,
        )

    @property
    def warmup(self) -> int:
        """Channel plus memory, and the vol window."""
        need = self.params["channel"] + self.params["memory"] + 1
        return int(max(need, self.params["vol_window"] + 1))

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        n = int(self.params["channel"])
        close = view.close
        prior_high = tf.rolling_max(close, n)[:-1]  # channel of the n sessions before each day
        prior_low = tf.rolling_min(close, n)[:-1]
        memory = int(self.params["memory"])
        up = (close[1:] > prior_high)[-memory:]
        down = (close[1:] < prior_low)[-memory:]
        direction = latest_breakout(up, down)
        return direction * self.size(close), np.abs(direction), f"{n}-day channel break"


class Donchian20(_Donchian):
    """20-day Donchian channel breakout (Turtle system 1)."""

    name = "donchian_20"
    description = "20-day Donchian channel breakout (Turtle system 1)"
    reference = "Donchian (1960); Faith (2007), Way of the Turtle (system 1: 20-day breakout)"


class Donchian55(_Donchian):
    """55-day Donchian channel breakout (Turtle system 2)."""

    name = "donchian_55"
    description = "55-day Donchian channel breakout (Turtle system 2)"
    reference = "Faith (2007), Way of the Turtle (system 2: 55-day breakout)"
    default_channel = 55


class KeltnerBreakout(VolSized):
    """Long after a close above EMA(n) + k ATR(m), short after a close below EMA - k ATR;
    the most recent such break within `memory` sessions decides."""

    name = "keltner"
    family = "breakout trend"
    description = "Keltner channel breakout: EMA(20) +- 2 ATR(10)"
    reference = "Keltner (1960), How to Make Money in Commodities; ATR bands per Raschke"
    parameters = (
        Parameter("ema_span", 20, 5, 60, "EMA span of the centre line"),
        Parameter("atr_period", 10, 5, 40, "ATR period (Wilder smoothing)"),
        Parameter("width", 2.0, 0.5, 4.0, "band half-width in ATRs"),
        Parameter("memory", 60, 5, 250, "sessions searched for the last break"),
        *_SIZING,
    )
    factor_exposures: ClassVar[dict[str, float]] = {"trend": 0.8}
    capacity_usd = 200_000_000.0
    features = ("ema", "atr")
    regimes = (TRENDING, CRISIS)

    @property
    def warmup(self) -> int:
        """EMA settling plus memory."""
        return int(
            max(4 * self.params["ema_span"] + self.params["memory"], self.params["vol_window"] + 1)
        )

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        centre = tf.ema(view.close, span=self.params["ema_span"])
        band = self.params["width"] * tf.atr(
            view.high, view.low, view.close, int(self.params["atr_period"])
        )
        memory = int(self.params["memory"])
        up = (view.close > centre + band)[-memory:]
        down = (view.close < centre - band)[-memory:]
        direction = latest_breakout(up, down)
        return direction * self.size(view.close), np.abs(direction), "Keltner band break"
