"""Paper broker: fills market orders at the next session's open plus slippage."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from qgtm.core.enums import OrderStatus
from qgtm.core.types import Fill, Order

PRICE_QUANTUM = Decimal("0.0001")


def fill_price(open_price: Decimal, side_sign: int, cost_bps: Decimal) -> Decimal:
    """open * (1 + side * cost_bps / 10_000), rounded half-even to 1/100 cent."""
    slip = Decimal(1) + side_sign * cost_bps / Decimal(10_000)
    return (open_price * slip).quantize(PRICE_QUANTUM)


def commission(per_share: Decimal, quantity: int) -> Decimal:
    """per-share rate * quantity, rounded to 1/100 cent."""
    return (per_share * quantity).quantize(PRICE_QUANTUM)


class PaperBroker:
    """Simulated venue for paper trading and backtests.

    Fill price = open * (1 + side * slippage_bps / 10_000), rounded to 1/100 cent;
    commission = per-share rate * quantity.
    """

    name = "paper"

    def __init__(self, slippage_bps: float, commission_per_share: Decimal) -> None:
        self.slippage_bps = Decimal(str(slippage_bps))
        self.commission_per_share = commission_per_share
        self._pending: dict[str, Order] = {}

    def submit(self, order: Order) -> None:
        """Queue an order for the next open; a repeated id is ignored."""
        self._pending.setdefault(order.client_order_id, order)

    def open_orders(self) -> list[Order]:
        """Queued orders in submission order."""
        return list(self._pending.values())

    def fill_at_open(
        self,
        opens: Mapping[str, Decimal],
        filled_at: datetime,
        impact_bps: Mapping[str, Decimal] | None = None,
    ) -> list[Fill]:
        """Fill every queued order at `opens` and clear the queue.

        `impact_bps` (by client_order_id) adds market impact on top of the slippage.
        """
        fills = []
        for order in self._pending.values():
            if order.status is not OrderStatus.SUBMITTED:
                continue
            extra = impact_bps.get(order.client_order_id, Decimal(0)) if impact_bps else Decimal(0)
            price = fill_price(opens[order.symbol], order.side.sign, self.slippage_bps + extra)
            fills.append(
                Fill(
                    fill_id=f"{order.client_order_id}-F1",
                    client_order_id=order.client_order_id,
                    symbol=order.symbol,
                    side=order.side,
                    quantity=order.quantity,
                    price=price,
                    commission=commission(self.commission_per_share, order.quantity),
                    filled_at=filled_at,
                )
            )
        self._pending.clear()
        return fills
