"""The cost model both runners apply identically: commission, slippage, impact, borrow.

Every amount is Decimal and rounded exactly as the paper broker rounds, so the
event-driven and vectorised runners book the same cents.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from qgtm.core.config import ExecutionConfig
from qgtm.engine.execution.brokers.paper import PRICE_QUANTUM

ADV_WINDOW = 20
TRADING_DAYS = 252


@dataclass(frozen=True, slots=True)
class CostModel:
    """Costs of trading and holding, and how the paper broker works an order.

    - commission: `commission_per_share` * shares of each fill (rounded to 1/100 cent);
    - fill price: reference * (1 + side * (slippage_bps + spread_bps / 2) / 10^4), rounded
      to 1/100 cent, the reference being the open (market orders) or the bucket price of
      an algo child: the paper broker's own rule (`PaperBroker._fill`, `fill_price`);
    - algos: as the live engine (`select_algo`), an order above vwap_adv_fraction of the
      mean volume of the adv_window sessions before the decision is worked as VWAP, above
      twap_adv_fraction as TWAP, each child capped at participation_cap of its bucket's
      volume; the rest expires at the close (`PaperBroker.execute_session`);
    - impact: impact_bps = impact_bps_at_full_adv * shares / ADV, ADV the integer mean
      volume of the ADV_WINDOW sessions before the decision (linear in participation,
      the simplest of the Almgren et al. 2005 family; 0 disables it), charged on each
      fill as |shares| * price * impact_bps / 10^4 (rounded to 1/100 cent); the live
      broker has no such charge, so it is 0 unless asked for;
    - borrow: each close, shorts pay |short market value| * borrow_bps_annual / 10^4 / 252.
    """

    commission_per_share: Decimal = Decimal("0.005")
    slippage_bps: float = 5.0
    impact_bps_at_full_adv: float = 0.0
    borrow_bps_annual: float = 0.0
    spread_bps: float = 0.0  # quoted spread; each fill pays half (as the paper broker)
    participation_cap: float = 0.10
    vwap_adv_fraction: float = 0.01
    twap_adv_fraction: float = 0.05
    adv_window: int = 20

    @classmethod
    def from_execution(cls, execution: ExecutionConfig, **overrides: float) -> CostModel:
        """The paper broker's costs and algo rules from config, plus optional impact/borrow."""
        return cls(
            commission_per_share=Decimal(execution.commission_per_share),
            slippage_bps=execution.slippage_bps,
            spread_bps=execution.spread_bps,
            participation_cap=execution.participation_cap,
            vwap_adv_fraction=execution.vwap_adv_fraction,
            twap_adv_fraction=execution.twap_adv_fraction,
            adv_window=execution.adv_window,
            **overrides,
        )

    def fill_cost_bps(self) -> Decimal:
        """slippage + spread / 2 in bps, summed as the paper broker sums them."""
        slippage, spread = Decimal(str(self.slippage_bps)), Decimal(str(self.spread_bps))
        return slippage + spread / 2

    def impact_charge(self, quantity: int, price: Decimal, impact_bps: Decimal) -> Decimal:
        """|quantity| * price * impact_bps / 10^4 for one fill, rounded to 1/100 cent."""
        if impact_bps == 0:
            return Decimal(0)
        return (abs(quantity) * price * impact_bps / Decimal(10_000)).quantize(PRICE_QUANTUM)

    def impact_bps(self, quantity: int, adv: int) -> Decimal:
        """Impact in bps for `quantity` shares against average daily volume `adv`."""
        if self.impact_bps_at_full_adv == 0 or adv <= 0:
            return Decimal(0)
        return Decimal(str(self.impact_bps_at_full_adv)) * quantity / adv

    def borrow_charge(self, short_value: Decimal) -> Decimal:
        """One session's borrow fee on `short_value` (absolute market value of shorts)."""
        if self.borrow_bps_annual == 0 or short_value == 0:
            return Decimal(0)
        rate = Decimal(str(self.borrow_bps_annual)) / Decimal(10_000) / TRADING_DAYS
        return (short_value * rate).quantize(PRICE_QUANTUM)

    def as_dict(self) -> dict[str, str | float]:
        """Plain data for artifacts."""
        return {
            "commission_per_share": str(self.commission_per_share),
            "slippage_bps": self.slippage_bps,
            "impact_bps_at_full_adv": self.impact_bps_at_full_adv,
            "borrow_bps_annual": self.borrow_bps_annual,
            "spread_bps": self.spread_bps,
            "participation_cap": self.participation_cap,
            "vwap_adv_fraction": self.vwap_adv_fraction,
            "twap_adv_fraction": self.twap_adv_fraction,
            "adv_window": self.adv_window,
        }


def average_daily_volume(volume_before: np.ndarray) -> np.ndarray:
    """Integer ADV per symbol from the newest ADV_WINDOW rows (exact integer arithmetic)."""
    window = volume_before[-ADV_WINDOW:]
    if len(window) == 0:
        return np.zeros(volume_before.shape[1], dtype=np.int64)
    return window.astype(np.int64).sum(axis=0) // len(window)


def adv_matrix(volume: np.ndarray) -> np.ndarray:
    """ADV known at each session i (rows before i), identical to average_daily_volume."""
    sessions, symbols = volume.shape
    csum = np.vstack([np.zeros((1, symbols), np.int64), np.cumsum(volume.astype(np.int64), 0)])
    out = np.zeros((sessions, symbols), dtype=np.int64)
    for i in range(1, sessions):
        lo = max(0, i - ADV_WINDOW)
        out[i] = (csum[i] - csum[lo]) // (i - lo)
    return out


def mean_volumes(volume_before: np.ndarray, window: int) -> np.ndarray:
    """Mean daily volume per symbol over the newest `window` rows (the live engine's
    `_average_volumes`, which sizes VWAP/TWAP); zeros with no history."""
    recent = volume_before[-window:]
    if len(recent) == 0:
        return np.zeros(volume_before.shape[1])
    return recent.mean(axis=0)
