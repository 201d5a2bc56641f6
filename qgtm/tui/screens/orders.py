"""Orders: the full blotter of recent orders and their fills."""

from __future__ import annotations

from textual.app import ComposeResult

from qgtm.core.snapshot import EngineSnapshot, OrderRow
from qgtm.tui.formatting import day, price, quantity, side
from qgtm.tui.screens.base import TerminalScreen
from qgtm.tui.widgets.live_table import Column, Row
from qgtm.tui.widgets.table_panel import TablePanel

NO_ORDERS = "No orders yet: the engine places its first orders after the strategy warm-up"

ORDER_COLUMNS = (
    Column("decided", "Decided", 10),
    Column("symbol", "Symbol", 6),
    Column("side", "Side", 4),
    Column("qty", "Qty", 8, "right"),
    Column("status", "Status", 9),
    Column("fill", "Fill", 9, "right"),
)

BLOTTER_COLUMNS = (
    Column("id", "Order id"),
    Column("decided", "Decided", 10),
    Column("symbol", "Symbol", 6),
    Column("side", "Side", 4),
    Column("qty", "Qty", 9, "right"),
    Column("status", "Status", 16),
    Column("fill", "Fill price", 10, "right"),
    Column("filled", "Filled on", 10),
)


def blotter_row(order: OrderRow) -> Row:
    """Blotter cells for one order, newest first as the snapshot lists them."""
    return order.client_order_id, (
        order.client_order_id,
        day(order.decision_date),
        order.symbol,
        side(order.side),
        quantity(order.quantity),
        order.status,
        price(order.fill_price),
        day(order.filled_on),
    )


def order_row(order: OrderRow) -> Row:
    """Short blotter cells for one order (the Monitor's recent orders panel)."""
    return order.client_order_id, (
        day(order.decision_date),
        order.symbol,
        side(order.side),
        quantity(order.quantity),
        order.status,
        price(order.fill_price),
    )


class OrdersScreen(TerminalScreen):
    """Every recent order, newest first."""

    def compose_body(self) -> ComposeResult:
        """One full-height blotter."""
        yield TablePanel("ORDER BLOTTER", BLOTTER_COLUMNS, NO_ORDERS, id="blotter")

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Sync the blotter with the snapshot's recent orders."""
        self.query_one("#blotter", TablePanel).sync(
            [blotter_row(o) for o in snapshot.recent_orders]
        )
