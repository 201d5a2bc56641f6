"""Carry / term-structure proxies. ETFs carry no futures curve, so roll yield is proxied
by relative performance of funds that hold different points or curves of the same
commodity (see qgtm.engine.features.transforms.term_structure_proxy)."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import numpy as np

from qgtm.core.universe import load_universe
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features import transforms as tf
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.strategies.base import Parameter, RuleStrategy, column
from qgtm.engine.strategies.trend import tercile_positions


class CarryUsoBno(RuleStrategy):
    """Proxy x = ln(USO/BNO)_t - ln(USO/BNO)_{t-w}. WTI front-month USO lagging Brent BNO
    (x < -threshold) signals steeper WTI contango: long BNO, short USO (hold the curve that
    rolls cheaper); x > threshold signals WTI backwardation: long USO, short BNO."""

    name = "carry_uso_bno"
    family = "carry / term structure"
    description = "WTI vs Brent roll-yield proxy: hold the fund with the cheaper roll"
    reference = (
        "Gorton, Hayashi, Rouwenhorst (2013), The fundamentals of commodity "
        "futures returns, RF 17(1)"
    )
    parameters = (
        Parameter("window", 63, 21, 252, "sessions of relative performance"),
        Parameter("threshold", 0.02, 0.0, 0.2, "log gap needed to trade"),
        Parameter("gross", 1.0, 0.1, 3.0, "gross exposure of the pair"),
    )
    factor_exposures: ClassVar[dict[str, float]] = {"carry": 1.0, "market": 0.0}
    capacity_usd = 30_000_000.0
    features = ("term_structure_proxy",)
    traded = requires = ("USO", "BNO")

    @property
    def warmup(self) -> int:
        """The window plus one."""
        return int(self.params["window"]) + 1

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        uso, bno = column(view.symbols, "USO"), column(view.symbols, "BNO")
        proxy = tf.term_structure_proxy(
            view.close[:, uso], view.close[:, bno], int(self.params["window"])
        )[-1]
        side = 0.0 if abs(proxy) <= self.params["threshold"] else float(np.sign(proxy))
        position = np.full(len(view.symbols), np.nan)
        half = self.params["gross"] / 2
        position[uso], position[bno] = side * half, -side * half
        confidence = np.full(len(view.symbols), min(abs(proxy) / 0.1, 1.0))
        return position, confidence, f"USO-BNO roll proxy {proxy:+.3f}"


class CarrySectorRoll(RuleStrategy):
    """Roll-drag proxy: each fund's 12-month log return minus its sector's average. Funds
    that persistently lag their sector are paying roll (contango) relative to it; long the
    top third, short the bottom third of this score."""

    name = "carry_sector_roll"
    family = "carry / term structure"
    description = "cross-sectional roll-drag proxy: 12m return relative to the sector"
    reference = (
        "Erb, Harvey (2006), The strategic and tactical value of commodity futures, FAJ 62(2)"
    )
    parameters = (Parameter("window", 252, 63, 504, "sessions of relative performance"),)
    factor_exposures: ClassVar[dict[str, float]] = {"carry": 1.0, "momentum": 0.3}
    capacity_usd = 100_000_000.0
    features = ("horizon_return",)

    @property
    def warmup(self) -> int:
        """The window plus one."""
        return int(self.params["window"]) + 1

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        universe = load_universe()
        ret = tf.horizon_return(view.close, int(self.params["window"]))[-1]
        sectors = np.array(
            [universe.sector_of(s) if s in universe.symbols else s for s in view.symbols]
        )
        relative = ret.copy()
        for sector in set(sectors):
            members = sectors == sector
            relative[members] = ret[members] - ret[members].mean()
        position = tercile_positions(relative)
        return position, np.where(position != 0, 1.0, 0.0), "return vs sector"
