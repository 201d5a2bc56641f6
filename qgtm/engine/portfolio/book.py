"""The book: cash and positions, changed only by fills, valued at marks.

Money is Decimal so cash and P&L add up to the cent; quantities are whole shares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from qgtm.core.types import Fill, PortfolioSnapshot, Position


@dataclass(slots=True)
class Holding:
    """Signed quantity and average entry price of one symbol."""

    quantity: int
    avg_price: Decimal


@dataclass(slots=True)
class Book:
    """Cash plus holdings; `apply_fill` is the only way positions change."""

    cash: Decimal
    holdings: dict[str, Holding] = field(default_factory=dict)

    def apply_fill(self, fill: Fill) -> None:
        """Book a fill: cash moves by -signed_qty*price - commission; average price updates.

        Adding to a position re-weights the average price; reducing keeps it; crossing
        through zero starts a new position at the fill price.
        """
        signed = fill.signed_quantity
        self.cash -= fill.price * signed + fill.commission
        held = self.holdings.get(fill.symbol)
        had = 0 if held is None else held.quantity
        new_qty = had + signed
        if new_qty == 0:
            self.holdings.pop(fill.symbol, None)
            return
        if held is None or had == 0 or (had > 0) != (new_qty > 0):
            avg = fill.price
        elif abs(new_qty) > abs(had):
            avg = (held.avg_price * abs(had) + fill.price * abs(signed)) / abs(new_qty)
        else:
            avg = held.avg_price
        self.holdings[fill.symbol] = Holding(new_qty, avg)

    def quantities(self) -> dict[str, int]:
        """Signed share counts by symbol."""
        return {s: h.quantity for s, h in self.holdings.items()}

    def equity(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Cash plus every holding at its mark."""
        return self.cash + sum(
            (marks[s] * h.quantity for s, h in self.holdings.items()), Decimal(0)
        )

    def weights(self, marks: Mapping[str, Decimal]) -> dict[str, float]:
        """Signed weights of equity at `marks`."""
        equity = self.equity(marks)
        if equity <= 0:
            return {}
        return {s: float(marks[s] * h.quantity / equity) for s, h in self.holdings.items()}

    def snapshot(
        self, as_of: datetime, marks: Mapping[str, Decimal], peak_equity: Decimal
    ) -> PortfolioSnapshot:
        """Immutable view of the book at `marks`."""
        positions = tuple(
            Position(s, h.quantity, h.avg_price, marks[s]) for s, h in sorted(self.holdings.items())
        )
        return PortfolioSnapshot(as_of, self.cash, positions, peak_equity)
