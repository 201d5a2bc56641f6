"""StateStore: fills roll into their order once, at the quantity-weighted average price."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from qgtm.core.enums import Side
from qgtm.core.types import Fill, Order
from qgtm.engine.state import StateStore

AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def _fill(fill_id: str, qty: int, price: str) -> Fill:
    return Fill(fill_id, "o-1", "GLD", Side.BUY, qty, Decimal(price), Decimal(0), AT)


def test_partial_fills_average_by_quantity_and_a_repeat_is_booked_once(tmp_path: Path):
    state = StateStore(tmp_path)
    try:
        with state.transaction():
            state.insert_order(Order("o-1", "GLD", Side.BUY, 300, AT, date(2026, 3, 2)))
            assert state.record_fill(_fill("f-1", 100, "10.00"))
            assert state.record_fill(_fill("f-2", 200, "10.30"))
            assert not state.record_fill(_fill("f-2", 200, "10.30"))  # the venue repeats
        row = state.conn.execute(
            "SELECT filled_quantity, avg_fill_price, status FROM orders"
        ).fetchone()
    finally:
        state.close()
    # (100 x 10.00 + 200 x 10.30) / 300 = 3,060 / 300 = 10.20 (not the last price, 10.30)
    assert row[0] == 300 and Decimal(row[1]) == Decimal("10.20") and row[2] == "FILLED"
