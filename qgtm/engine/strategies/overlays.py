"""Volatility-regime and risk-parity overlays."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import numpy as np

from qgtm.engine.data.store import PricePanel
from qgtm.engine.features import transforms as tf
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.strategies.base import CRISIS, Parameter, RuleStrategy, VolSized
from qgtm.engine.strategies.trend import tercile_positions

_WINDOW = Parameter("vol_window", 63, 20, 252, "sessions for realised volatility")


def annual_vol(close: np.ndarray, window: int) -> np.ndarray:
    """Sample stdev of the last `window` daily log returns * sqrt(252)."""
    return np.diff(np.log(close[-window - 1 :]), axis=0).std(axis=0, ddof=1) * np.sqrt(252)


class RiskParity(VolSized):
    """Long every fund with w_i = target_vol / (N sigma_i): equal risk budgets, ignoring
    correlation (naive risk parity)."""

    name = "risk_parity"
    family = "risk-parity overlay"
    description = "long-only naive risk parity across the universe"
    reference = "Asness, Frazzini, Pedersen (2012), Leverage aversion and risk parity, FAJ 68(1)"
    parameters = (_WINDOW, Parameter("target_vol", 0.10, 0.02, 0.40, "vol budget per position x N"))
    factor_exposures: ClassVar[dict[str, float]] = {"market": 1.0}
    capacity_usd = 1_000_000_000.0
    features = ("realised_vol",)

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        sigma = annual_vol(view.close, int(self.params["vol_window"]))
        with np.errstate(divide="ignore"):
            weight = np.where(sigma > 0, self.params["target_vol"] / (len(sigma) * sigma), np.nan)
        return weight, np.ones(len(sigma)), "inverse-vol budget"


class VolManaged(VolSized):
    """Long every fund scaled by target_var / sigma^2 of the last month, capped
    (volatility-managed portfolios: cut exposure when variance is high)."""

    name = "vol_managed"
    family = "volatility regime"
    description = "volatility-managed long exposure, inverse to recent variance"
    reference = "Moreira, Muir (2017), Volatility-managed portfolios, JF 72(4)"
    parameters = (
        Parameter("vol_window", 21, 10, 126, "sessions of realised variance"),
        Parameter("target_vol", 0.10, 0.02, 0.40, "annual vol at which the weight is 1/N"),
        Parameter("max_weight", 0.5, 0.05, 2.0, "cap per fund"),
    )
    factor_exposures: ClassVar[dict[str, float]] = {"market": 1.0, "volatility": -1.0}
    capacity_usd = 800_000_000.0
    features = ("realised_vol",)

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        sigma = annual_vol(view.close, int(self.params["vol_window"]))
        n = len(sigma)
        with np.errstate(divide="ignore"):
            weight = np.where(sigma > 0, self.params["target_vol"] ** 2 / sigma**2 / n, np.nan)
        return np.minimum(weight, self.params["max_weight"]), np.ones(n), "target var / var"


class SafeHavenSwitch(RuleStrategy):
    """When the universe's average 21-day realised vol ranks at or above `percentile` of
    its own trailing year (share of the last 252 days strictly below today's), hold gold
    (GLD, IAU) as the crisis hedge; flat otherwise."""

    name = "safe_haven_switch"
    family = "volatility regime"
    description = "rotate into gold when cross-asset volatility spikes"
    reference = "Baur, Lucey (2010), Is gold a hedge or a safe haven?, Financial Review 45(2)"
    parameters = (
        Parameter("percentile", 0.8, 0.5, 0.99, "vol percentile that flags stress"),
        Parameter("weight", 0.5, 0.1, 1.0, "weight per gold fund under stress"),
    )
    factor_exposures: ClassVar[dict[str, float]] = {"volatility": 1.0, "gold": 1.0}
    capacity_usd = 500_000_000.0
    features = ("realised_vol",)
    traded = ("GLD", "IAU")
    regimes = ("trending", "mean_reverting", CRISIS)

    @property
    def warmup(self) -> int:
        """A year of 21-day vols."""
        return 252 + 22

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        vol = tf.realised_vol(view.close, 21)[-252:].mean(axis=1)
        rank = float(np.mean(vol < vol[-1]))
        stressed = rank >= self.params["percentile"]
        position = np.full(len(view.symbols), self.params["weight"] if stressed else 0.0)
        return position, np.full(len(view.symbols), rank), f"vol percentile {rank:.0%}"


class LowVolatility(VolSized):
    """Rank by 63-day realised vol; long the calmest third, short the wildest third, each
    leg scaled so both carry similar risk (w ~ 1/sigma, normalised per leg)."""

    name = "low_vol_xs"
    family = "volatility regime"
    description = "cross-sectional low-volatility anomaly, risk-balanced legs"
    reference = "Frazzini, Pedersen (2014), Betting against beta, JFE 111(1)"
    parameters = (_WINDOW,)
    factor_exposures: ClassVar[dict[str, float]] = {"low_vol": 1.0, "market": 0.0}
    capacity_usd = 100_000_000.0
    features = ("realised_vol",)

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        sigma = annual_vol(view.close, int(self.params["vol_window"]))
        rank = tercile_positions(-sigma)
        inverse = np.where(sigma > 0, 1.0 / sigma, 0.0)
        position = np.zeros(len(sigma))
        for leg in (rank > 0, rank < 0):
            if leg.any():
                position[leg] = np.sign(rank[leg]) * inverse[leg] / inverse[leg].sum()
        position[~np.isfinite(rank)] = np.nan
        return (
            position,
            np.where(rank != 0, 1.0, 0.0),
            f"{int(self.params['vol_window'])}d vol rank",
        )
