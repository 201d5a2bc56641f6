"""Seasonality: calendar rules whose only input is the decision date (plus vol sizing).
Months are the decision session's calendar month."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

import numpy as np

from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.strategies.base import VolSized, vol_sizing


class _Seasonal(VolSized):
    """Long `traded` in `long_months`, short in `short_months`, flat otherwise."""

    family = "seasonality"
    factor_exposures: ClassVar[dict[str, float]] = {"seasonal": 1.0}
    features = ("realised_vol",)
    long_months: ClassVar[frozenset[int]] = frozenset()
    short_months: ClassVar[frozenset[int]] = frozenset()
    parameters = (*vol_sizing(0.15),)

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        side = (
            1.0
            if as_of.month in self.long_months
            else -1.0
            if as_of.month in self.short_months
            else 0.0
        )
        size = self.size(view.close)
        return (
            np.full(len(view.symbols), side) * size,
            np.full(len(view.symbols), abs(side)),
            f"month {as_of.month}",
        )


class NatgasWinter(_Seasonal):
    """Natural gas: long Aug-Oct into the heating season, short Mar-Apr shoulder."""

    name = "natgas_winter"
    description = "natural gas: long Aug-Oct into the heating season, short Mar-Apr shoulder"
    reference = (
        "Brown, Yücel (2008), Deliverability and regional pricing in U.S. "
        "natural gas markets; EIA storage-cycle practice"
    )
    traded = ("UNG",)
    long_months = frozenset({8, 9, 10})
    short_months = frozenset({3, 4})
    capacity_usd = 20_000_000.0


class GrainsWeather(_Seasonal):
    """Grains: long May-Jun weather premium, short Aug-Sep harvest pressure."""

    name = "grains_weather"
    description = "grains: long May-Jun weather premium, short Aug-Sep harvest pressure"
    reference = "Sørensen (2002), Modeling seasonality in agricultural commodity futures, JFM 22(5)"
    traded = ("CORN", "SOYB", "WEAT")
    long_months = frozenset({5, 6})
    short_months = frozenset({8, 9})
    capacity_usd = 10_000_000.0


class GasolineDriving(_Seasonal):
    """Gasoline: long Feb-Apr ahead of the summer driving season."""

    name = "gasoline_driving"
    description = "gasoline: long Feb-Apr ahead of the summer driving season"
    reference = (
        "Borovkova, Geman (2006), Seasonal and stochastic effects in commodity "
        "forward curves, RDS 9(2)"
    )
    traded = ("UGA",)
    long_months = frozenset({2, 3, 4})
    capacity_usd = 5_000_000.0


class GoldAutumn(_Seasonal):
    """Gold: long September and November (the autumn effect)."""

    name = "gold_autumn"
    description = "gold: long September and November (the autumn effect)"
    reference = (
        "Baur (2013), The autumn effect of gold, Research in International "
        "Business and Finance 27(1)"
    )
    traded = ("GLD",)
    long_months = frozenset({9, 11})
    capacity_usd = 300_000_000.0
