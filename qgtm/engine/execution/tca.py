"""Transaction cost analysis per parent order, in basis points (positive = a cost).

With side sign s (+1 buy, -1 sell), intended quantity Q, fills q_i at p_i
(filled F = sum q_i, average fill price P_f = sum q_i p_i / F), commissions C:

- arrival-price cost  = s (P_f - P_a) / P_a x 10^4, P_a the price when the order
  reached the market (the open of the execution session for the paper broker);
- VWAP slippage       = s (P_f - V) / V x 10^4, V the market VWAP over the execution
  window;
- implementation shortfall (Perold, "The implementation shortfall: paper versus
  reality", J. Portfolio Management 14(3), 1988): the paper portfolio trades all Q at the
  decision price P_d at no cost; the real one pays
      IS = [s sum q_i (p_i - P_d) + s (Q - F)(P_end - P_d) + C] / (Q P_d) x 10^4,
  execution cost plus the opportunity cost of the unfilled remainder valued at the
  price P_end at the end of the window, plus fees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from qgtm.core.enums import Side
from qgtm.core.types import Fill

BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class TcaResult:
    """Costs of one parent order, in bps of notional (positive = cost, negative = gain)."""

    client_order_id: str
    strategy: str
    symbol: str
    side: Side
    algo: str
    quantity: int
    filled_quantity: int
    avg_fill_price: float | None
    decision_price: float
    arrival_price: float
    vwap_price: float
    end_price: float
    commission: float
    arrival_cost_bps: float | None
    vwap_slippage_bps: float | None
    implementation_shortfall_bps: float


def average_fill_price(fills: Sequence[Fill]) -> Decimal | None:
    """Quantity-weighted mean fill price, None without fills."""
    filled = sum(f.quantity for f in fills)
    if filled == 0:
        return None
    return sum((f.price * f.quantity for f in fills), Decimal(0)) / filled


def arrival_cost_bps(side: Side, avg_fill: Decimal, arrival: Decimal) -> float:
    """s (P_f - P_a) / P_a x 10^4."""
    return float(side.sign * (avg_fill - arrival) / arrival * BPS)


def vwap_slippage_bps(side: Side, avg_fill: Decimal, vwap: Decimal) -> float:
    """s (P_f - V) / V x 10^4."""
    return float(side.sign * (avg_fill - vwap) / vwap * BPS)


def implementation_shortfall_bps(
    side: Side,
    quantity: int,
    fills: Sequence[Fill],
    decision_price: Decimal,
    end_price: Decimal,
) -> float:
    """Perold (1988) shortfall: execution + opportunity cost + fees over Q P_d, in bps."""
    filled = sum(f.quantity for f in fills)
    execution = sum((f.quantity * (f.price - decision_price) for f in fills), Decimal(0))
    opportunity = (quantity - filled) * (end_price - decision_price)
    fees = sum((f.commission for f in fills), Decimal(0))
    shortfall = side.sign * (execution + opportunity) + fees
    return float(shortfall / (quantity * decision_price) * BPS)


def analyse(
    *,
    client_order_id: str,
    strategy: str,
    symbol: str,
    side: Side,
    algo: str,
    quantity: int,
    fills: Sequence[Fill],
    decision_price: Decimal,
    arrival_price: Decimal,
    vwap_price: Decimal,
    end_price: Decimal,
) -> TcaResult:
    """All three measures for one parent order."""
    avg = average_fill_price(fills)
    return TcaResult(
        client_order_id=client_order_id,
        strategy=strategy,
        symbol=symbol,
        side=side,
        algo=algo,
        quantity=quantity,
        filled_quantity=sum(f.quantity for f in fills),
        avg_fill_price=None if avg is None else float(avg),
        decision_price=float(decision_price),
        arrival_price=float(arrival_price),
        vwap_price=float(vwap_price),
        end_price=float(end_price),
        commission=float(sum((f.commission for f in fills), Decimal(0))),
        arrival_cost_bps=None if avg is None else arrival_cost_bps(side, avg, arrival_price),
        vwap_slippage_bps=None if avg is None else vwap_slippage_bps(side, avg, vwap_price),
        implementation_shortfall_bps=implementation_shortfall_bps(
            side, quantity, fills, decision_price, end_price
        ),
    )
