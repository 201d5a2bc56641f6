"""Mean reversion: Bollinger bands, RSI, price z-score and short-term cross-sectional
reversal. They trade only in the mean-reverting regime."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import numpy as np

from qgtm.engine.data.store import PricePanel
from qgtm.engine.features import transforms as tf
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.strategies.base import MEAN_REVERTING, Parameter, RuleStrategy, VolSized
from qgtm.engine.strategies.trend import tercile_positions

_SIZING = (
    Parameter("vol_window", 21, 10, 126, "sessions for realised volatility"),
    Parameter("target_vol", 0.15, 0.05, 0.60, "annual vol each position is scaled to"),
    Parameter("max_weight", 1.0, 0.1, 5.0, "cap on the vol-scaled weight"),
)


class _MeanReversion(VolSized):
    family = "mean reversion"
    factor_exposures: ClassVar[dict[str, float]] = {"reversal": 1.0}
    capacity_usd = 75_000_000.0
    regimes = (MEAN_REVERTING,)


class BollingerReversion(_MeanReversion):
    """z = (P - SMA(n)) / stdev(n); long when z < -k (below the lower band), short when
    z > +k, flat inside the bands."""

    name = "bollinger_mr"
    description = "fade closes outside 20-day, 2-sigma Bollinger bands"
    reference = "Bollinger (2001), Bollinger on Bollinger Bands"
    parameters = (
        Parameter("window", 20, 5, 100, "band sessions"),
        Parameter("width", 2.0, 0.5, 4.0, "band half-width in standard deviations"),
        *_SIZING,
    )
    features = ("zscore",)

    @property
    def warmup(self) -> int:
        """Band window and vol window."""
        return int(max(self.params["window"], self.params["vol_window"] + 1))

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        z = tf.zscore(view.close, int(self.params["window"]))[-1]
        k = self.params["width"]
        direction = np.where(z < -k, 1.0, np.where(z > k, -1.0, 0.0))
        return direction * self.size(view.close), np.abs(z) / (2 * k), "Bollinger z"


class _Rsi(_MeanReversion):
    """Long when Wilder's RSI(period) < lower, short when > upper, flat between."""

    features = ("rsi",)
    default_period: ClassVar[int] = 14
    default_band: ClassVar[tuple[float, float]] = (30.0, 70.0)

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        low, high = cls.default_band
        cls.parameters = (
            Parameter("period", cls.default_period, 2, 30, "RSI period"),
            Parameter("lower", low, 1, 49, "oversold level"),
            Parameter("upper", high, 51, 99, "overbought level"),
            *_SIZING,
        )

    @property
    def warmup(self) -> int:
        """Ten periods for Wilder smoothing, and the vol window."""
        return int(max(10 * self.params["period"], self.params["vol_window"] + 1, 30))

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        value = tf.rsi(view.close, int(self.params["period"]))[-1]
        low, high = self.params["lower"], self.params["upper"]
        direction = np.where(value < low, 1.0, np.where(value > high, -1.0, 0.0))
        confidence = np.abs(value - 50.0) / 50.0
        return direction * self.size(view.close), confidence, [f"RSI {v:.0f}" for v in value]


class Rsi2(_Rsi):
    """Connors RSI(2): buy below 10, sell above 90."""

    name = "rsi2"
    description = "Connors RSI(2): buy below 10, sell above 90"
    reference = "Connors, Alvarez (2009), Short Term Trading Strategies That Work"
    default_period = 2
    default_band = (10.0, 90.0)


class Rsi14(_Rsi):
    """Wilder RSI(14): buy below 30, sell above 70."""

    name = "rsi14"
    description = "Wilder RSI(14): buy below 30, sell above 70"
    reference = "Wilder (1978), New Concepts in Technical Trading Systems"


class ZScoreReversion(_MeanReversion):
    """z of the log price against its `window`-session mean; position -clip(z / 2, -1, 1)
    times the vol-scaled size when |z| > entry, flat otherwise."""

    name = "zscore_mr"
    description = "continuous fade of the 60-day log-price z-score"
    reference = "Poterba, Summers (1988), Mean reversion in stock prices, JFE 22(1)"
    parameters = (
        Parameter("window", 60, 10, 250, "z-score sessions"),
        Parameter("entry", 1.0, 0.0, 3.0, "|z| needed to trade"),
        *_SIZING,
    )
    features = ("zscore",)

    @property
    def warmup(self) -> int:
        """z window and vol window."""
        return int(max(self.params["window"], self.params["vol_window"] + 1))

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        z = tf.zscore(np.log(view.close), int(self.params["window"]))[-1]
        active = np.abs(z) > self.params["entry"]
        position = np.where(active, -np.clip(z / 2.0, -1.0, 1.0), 0.0) * self.size(view.close)
        return position, np.clip(np.abs(z) / 3.0, 0, 1), "log-price z"


class ShortTermReversal(RuleStrategy):
    """Rank by the last `lookback`-session return; long the worst third, short the best
    third, 1/k per name."""

    name = "st_reversal"
    family = "mean reversion"
    description = "cross-sectional 1-week reversal: buy losers, sell winners"
    reference = "Lehmann (1990), Fads, martingales and market efficiency, QJE 105(1)"
    parameters = (Parameter("lookback", 5, 1, 21, "sessions of the ranked return"),)
    factor_exposures: ClassVar[dict[str, float]] = {"reversal": 1.0, "market": 0.0}
    capacity_usd = 50_000_000.0
    features = ("horizon_return",)
    regimes = (MEAN_REVERTING,)

    @property
    def warmup(self) -> int:
        """Lookback plus one."""
        return int(self.params["lookback"]) + 1

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        score = tf.horizon_return(view.close, int(self.params["lookback"]))[-1]
        position = tercile_positions(-score)
        return position, np.where(position != 0, 1.0, 0.0), "short-term reversal rank"
