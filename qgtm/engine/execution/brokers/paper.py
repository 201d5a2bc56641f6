"""Paper broker: fills market orders at the next session's open plus slippage."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from qgtm.core.enums import OrderStatus
from qgtm.core.types import Fill, Order

PRICE_QUANTUM = Decimal("0.0001")


class PaperBroker:
    """Simulated venue for paper trading and backtests.

    Fill price = open * (1 + side * slippage_bps / 10_000), rounded to 1/100 cent;
    commission = per-share rate * quantity.
    """

    name = "paper"

    def __init__(
        self,
        slippage_bps: float,
        commission_per_share: Decimal,
        positions: Mapping[str, int] | None = None,
    ) -> None:
        self.slippage_bps = Decimal(str(slippage_bps))
        self.commission_per_share = commission_per_share
        self._pending: dict[str, Order] = {}
        self._positions: dict[str, int] = {s: q for s, q in (positions or {}).items() if q}

    def positions(self) -> dict[str, int]:
        """Signed share quantity per symbol as the venue sees it (from its own fills)."""
        return dict(self._positions)

    def submit(self, order: Order) -> None:
        """Queue an order for the next open; a repeated id is ignored."""
        self._pending.setdefault(order.client_order_id, order)

    def open_orders(self) -> list[Order]:
        """Queued orders in submission order."""
        return list(self._pending.values())

    def fill_at_open(self, opens: Mapping[str, Decimal], filled_at: datetime) -> list[Fill]:
        """Fill every queued order at `opens` and clear the queue."""
        fills = []
        for order in self._pending.values():
            if order.status is not OrderStatus.SUBMITTED:
                continue
            slip = Decimal(1) + order.side.sign * self.slippage_bps / Decimal(10_000)
            price = (opens[order.symbol] * slip).quantize(PRICE_QUANTUM)
            fills.append(
                Fill(
                    fill_id=f"{order.client_order_id}-F1",
                    client_order_id=order.client_order_id,
                    symbol=order.symbol,
                    side=order.side,
                    quantity=order.quantity,
                    price=price,
                    commission=(self.commission_per_share * order.quantity).quantize(PRICE_QUANTUM),
                    filled_at=filled_at,
                )
            )
            held = self._positions.get(order.symbol, 0) + order.side.sign * order.quantity
            if held:
                self._positions[order.symbol] = held
            else:
                self._positions.pop(order.symbol, None)
        self._pending.clear()
        return fills


def filled_positions(conn: sqlite3.Connection) -> dict[str, int]:
    """The paper venue's positions rebuilt from its fills (not from the engine's book)."""
    rows = conn.execute(
        "SELECT symbol, SUM(CASE side WHEN 'BUY' THEN quantity ELSE -quantity END) "
        "FROM fills GROUP BY symbol"
    ).fetchall()
    return {symbol: int(qty) for symbol, qty in rows if qty}
