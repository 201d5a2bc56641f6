"""Macro: gold against real rates and the dollar, commodities against the dollar. Inputs
are FRED series in the strategy context (point in time by knowledge date; the seeded demo
fallback when no provider has filled them)."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import numpy as np

from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import DOLLAR_INDEX, REAL_YIELD, StrategyContext
from qgtm.engine.strategies.base import Parameter, VolSized, vol_sizing


class _MacroDriver(VolSized):
    """Position = -sign(change of the driver over `window` observations) x vol-scaled
    size on `traded`, flat when |change| <= threshold or the series is too short."""

    family = "macro"
    series: ClassVar[str]
    log_change: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.features = (cls.series,)

    def driver_change(self, context: StrategyContext, as_of: date) -> float:
        """Change of the driver over the window, from values known before `as_of`."""
        values = context.known_before(self.series, as_of)
        window = int(self.params["window"])
        if len(values) <= window:
            return float("nan")
        if self.log_change:
            return float(np.log(values[-1] / values[-1 - window]))
        return float(values[-1] - values[-1 - window])

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        change = self.driver_change(context, as_of)
        size = self.size(view.close)
        n = len(view.symbols)
        if not np.isfinite(change):
            return np.full(n, np.nan), np.zeros(n), "driver not yet known"
        side = 0.0 if abs(change) <= self.params["threshold"] else -float(np.sign(change))
        confidence = min(abs(change) / (4 * self.params["threshold"] or 1.0), 1.0)
        return side * size, np.full(n, confidence), f"{self.series} change {change:+.3f}"


def _params(threshold: float, high: float) -> tuple[Parameter, ...]:
    return (
        Parameter("window", 63, 5, 252, "observations of the driver's change"),
        Parameter("threshold", threshold, 0.0, high, "|change| needed to trade"),
        *vol_sizing(0.15),
    )


class GoldRealRates(_MacroDriver):
    """Long gold when 10y TIPS real yields fall, short when they rise."""

    name = "gold_real_rates"
    description = "long gold when 10y TIPS real yields fall, short when they rise"
    reference = "Erb, Harvey (2013), The golden dilemma, FAJ 69(4)"
    series = REAL_YIELD
    parameters = _params(0.10, 1.0)
    traded = ("GLD", "IAU")
    factor_exposures: ClassVar[dict[str, float]] = {"real_rates": -1.0, "gold": 1.0}
    capacity_usd = 400_000_000.0


class GoldDollar(_MacroDriver):
    """Long gold when the broad dollar weakens, short when it strengthens."""

    name = "gold_dollar"
    description = "long gold when the broad dollar weakens, short when it strengthens"
    reference = "Capie, Mills, Wood (2005), Gold as a hedge against the dollar, JIFMIM 15(4)"
    series = DOLLAR_INDEX
    log_change = True
    parameters = _params(0.01, 0.2)
    traded = ("GLD", "IAU")
    factor_exposures: ClassVar[dict[str, float]] = {"dollar": -1.0, "gold": 1.0}
    capacity_usd = 400_000_000.0


class CommodityDollar(_MacroDriver):
    """Long broad commodities when the dollar weakens, short when it strengthens."""

    name = "commodity_dollar"
    description = "long broad commodities when the dollar weakens, short when it strengthens"
    reference = (
        "Akram (2009), Commodity prices, interest rates and the dollar, Energy Economics 31(6)"
    )
    series = DOLLAR_INDEX
    log_change = True
    parameters = _params(0.01, 0.2)
    traded = ("DBC", "GSG")
    factor_exposures: ClassVar[dict[str, float]] = {"dollar": -1.0, "market": 1.0}
    capacity_usd = 300_000_000.0
