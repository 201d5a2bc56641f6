"""Time-series momentum, 12-1 with volatility scaling (Moskowitz, Ooi, Pedersen 2012)."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import numpy as np

from qgtm.core.enums import SignalDirection
from qgtm.core.types import Signal
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.strategies.base import ALL_REGIMES, BaseStrategy, Parameter, vol_sizing

TRADING_DAYS = 252


class TimeSeriesMomentum(BaseStrategy):
    """Long what rose over the past year excluding the last month, short what fell.

    Direction: sign of the log return from t-lookback to t-skip.
    Size: target_vol / sigma_annual, sigma from the last `vol_window` daily log returns
    (MOP 2012, eq. 5 uses 40% / sigma; we use a configurable target and a cap).
    Confidence: |momentum| / (sigma_daily * sqrt(lookback - skip)), clipped to [0, 1],
    i.e. how many standard deviations the move spans.
    """

    name = "tsmom"
    family = "time-series momentum"
    description = "12-1 month time-series momentum, volatility scaled"
    reference = "Moskowitz, Ooi, Pedersen (2012), Time series momentum, JFE 104(2)"
    parameters = (
        Parameter("lookback", 252, 60, 504, "sessions in the momentum window"),
        Parameter("skip", 21, 0, 63, "most recent sessions excluded (short-term reversal)"),
        *vol_sizing(0.40),
        Parameter("max_weight", 2.0, 0.1, 5.0, "cap on the raw vol-scaled weight"),
    )
    factor_exposures: ClassVar[dict[str, float]] = {"trend": 1.0}
    capacity_usd = 250_000_000.0
    features = ("horizon_return", "realised_vol")
    # The engine's default, all-weather trend book: MOP 2012 hold it through every regime.
    regimes = ALL_REGIMES

    @property
    def warmup(self) -> int:
        """One lookback plus a day for the first return."""
        return int(max(self.params["lookback"], self.params["vol_window"])) + 1

    def generate(
        self, history: PricePanel, as_of: date, *, context: StrategyContext | None = None
    ) -> list[Signal]:
        """One Signal per symbol once warm; empty before that (no auxiliary data used)."""
        if len(history) < self.warmup:
            return []
        lookback, skip = int(self.params["lookback"]), int(self.params["skip"])
        closes = history.close
        log_close = np.log(closes)
        momentum = log_close[-1 - skip] - log_close[-1 - lookback]
        daily = np.diff(log_close[-int(self.params["vol_window"]) - 1 :], axis=0)
        sigma_daily = daily.std(axis=0, ddof=1)
        sigma_annual = sigma_daily * np.sqrt(TRADING_DAYS)
        signals = []
        for i, symbol in enumerate(history.symbols):
            if not np.isfinite(momentum[i]) or sigma_daily[i] <= 0:
                continue
            direction = SignalDirection.LONG if momentum[i] > 0 else SignalDirection.SHORT
            if momentum[i] == 0:
                direction = SignalDirection.FLAT
            weight = min(self.params["target_vol"] / sigma_annual[i], self.params["max_weight"])
            spread = sigma_daily[i] * np.sqrt(lookback - skip)
            confidence = float(min(1.0, abs(momentum[i]) / spread))
            signals.append(
                Signal(
                    symbol=symbol,
                    side=direction,
                    weight=float(weight),
                    confidence=confidence,
                    strategy=self.name,
                    as_of=as_of,
                    rationale=(
                        f"{lookback}-{skip} log return {momentum[i]:+.3f}, "
                        f"realised vol {sigma_annual[i]:.1%}"
                    ),
                )
            )
        return signals
