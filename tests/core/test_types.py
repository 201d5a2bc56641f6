from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from qgtm.core.enums import OrderStatus, Side
from qgtm.core.types import Fill, Order

ORDERS = st.builds(
    Order,
    client_order_id=st.text(min_size=1, max_size=12),
    symbol=st.sampled_from(["GLD", "SLV", "USO"]),
    side=st.sampled_from(Side),
    quantity=st.integers(1, 10**6),
    created_at=st.datetimes(),
    decision_date=st.dates(),
    status=st.sampled_from(OrderStatus),
    order_type=st.sampled_from(["market", "vwap", "twap"]),
    reason=st.text(max_size=12),
    filled_quantity=st.integers(0, 10**6),
)


@given(ORDERS, st.sampled_from(OrderStatus), st.sampled_from([None, "market", "vwap"]))
def test_with_status_is_replace(order, status, order_type):
    changes = (
        {"status": status} if order_type is None else {"status": status, "order_type": order_type}
    )
    assert order.with_status(status, order_type) == replace(order, **changes)


@given(st.sampled_from(Side), st.integers(1, 10**6))
def test_a_fills_signed_quantity_carries_the_sides_sign(side, quantity):
    fill = Fill("f", "o", "GLD", side, quantity, Decimal(1), Decimal(0), datetime(2024, 1, 2))
    assert fill.signed_quantity == side.sign * quantity
    assert (fill.signed_quantity > 0) == (side is Side.BUY)
