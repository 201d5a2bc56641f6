"""Orders & TCA: the live blotter (state, algo, fills, child orders) and trading costs.

The blotter's rows come from the snapshot (so it never lags the engine); the execution
details, child orders and TCA come from the engine commands `execution.blotter`,
`execution.children` and `execution.tca`, fetched in a worker after each snapshot.

Below NARROW_WIDTH columns the panels stack in one scrolling column (blotter, TCA by
order, children, TCA by strategy), and a table too narrow for all its columns drops its
detail columns (Column.when), so the algo and the costs in bps stay whole at 80 columns.
"""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.events import Resize
from textual.widgets import DataTable, Static

from qgtm.core.calendar import NEW_YORK
from qgtm.core.results import BlotterRow, ChildOrderRow, TcaRow, TcaStrategyRow
from qgtm.core.snapshot import EngineSnapshot, OrderRow
from qgtm.tui.formatting import DASH, bps, day, price, quantity, side
from qgtm.tui.screens.base import TerminalScreen
from qgtm.tui.widgets.live_table import Column, LiveTable, Row
from qgtm.tui.widgets.table_panel import TablePanel

NO_ORDERS = "No orders yet: the engine places its first orders after the strategy warm-up"
NO_CHILDREN = "Highlight an order in the blotter to see its child orders and fills"
ONE_PIECE = "No child orders: this order was sent whole (market) or has not worked yet"
NO_TCA = "No finished orders yet: costs appear once an order is filled or expires"
NARROW_WIDTH = 215
"""Below this many columns the cost panels stack under the blotter instead of beside:
side by side, TCA by order (76 columns in its narrow form), the children (77) and TCA by
strategy (59) need about 212."""

ORDER_COLUMNS = (
    Column("decided", "Decided", 10, export="decision_date"),
    Column("symbol", "Symbol", 6),
    Column("side", "Side", 4),
    Column("qty", "Qty", 8, "right", export="quantity"),
    Column("status", "Status", 9),
    Column("fill", "Fill", 9, "right", export="fill_price"),
)

BLOTTER_COLUMNS = (
    Column("id", "Order id", export="client_order_id", when="wide"),
    Column("decided", "Decided", 10, export="decision_date"),
    Column("symbol", "Symbol", 6),
    Column("side", "Side", 4),
    Column("qty", "Qty", 9, "right", export="quantity"),
    Column("status", "Status", 16),
    Column("algo", "Algo", 6),
    Column("filled_qty", "Filled", 9, "right", export="filled_quantity", when="wide"),
    Column("unfilled", "Unfilled", 8, "right", export="unfilled_quantity", when="wide"),
    Column("children", "Kids", 4, "right", when="wide"),
    Column("fill", "Fill price", 10, "right", export="fill_price"),
    Column("filled", "Filled on", 10, export="filled_on", when="wide"),
)

CHILD_COLUMNS = (
    Column("child", "Child", 9),
    Column("status", "Status", 9),
    Column("qty", "Qty", 8, "right", export="quantity"),
    Column("filled", "Filled", 8, "right", export="filled_quantity"),
    Column("price", "Avg price", 10, "right", export="avg_price"),
    Column("at", "Filled / due at", 19),
)

TCA_COLUMNS = (
    Column("id", "Order id", export="client_order_id", when="wide"),
    Column("order", "Order", 15, export="decision_symbol", when="narrow"),
    Column("algo", "Algo", 6),
    Column("filled", "Filled", 12, "right"),
    Column("arrival", "Arrival bps", 11, "right", export="arrival_cost"),
    Column("vwap", "VWAP bps", 9, "right", export="vwap_slippage"),
    Column("is", "IS bps", 8, "right", export="implementation_shortfall"),
    Column("bench", "Benchmarks", 15, when="wide"),
)

# Where TCA's arrival / VWAP prices came from (execution.benchmarks.Benchmarks), in brief.
BENCHMARK_SOURCES = {
    "session_bar": "bar",
    "quote_mid": "quote",
    "last_trade": "trade",
    "minute_bar": "1m bar",
    "minute_bar_open": "1m open",
    "minute_bar_vwap": "1m vwap",
    "decision": "decision",
}

STRATEGY_COLUMNS = (
    Column("strategy", "Strategy", 12),
    Column("orders", "Orders", 7, "right"),
    Column("arrival", "Arrival bps", 11, "right", export="arrival_cost"),
    Column("vwap", "VWAP bps", 9, "right", export="vwap_slippage"),
    Column("is", "IS bps", 8, "right", export="implementation_shortfall"),
)


def blotter_row(order: OrderRow, ex: BlotterRow | None = None) -> Row:
    """Blotter cells for one order; `ex` adds algo, filled, unfilled and children."""
    return order.client_order_id, (
        order.client_order_id,
        day(order.decision_date),
        order.symbol,
        side(order.side),
        quantity(order.quantity),
        order.status,
        DASH if ex is None else ex.algo,
        DASH if ex is None else quantity(ex.filled_quantity),
        quantity(ex.unfilled) if ex is not None and ex.unfilled else DASH,
        quantity(ex.children) if ex is not None and ex.children else DASH,
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


def tca_row(result: TcaRow) -> Row:
    """Per-order costs: arrival, VWAP slippage, implementation shortfall (bps)."""
    return result.client_order_id, (
        result.client_order_id,
        short_order_id(result.client_order_id),
        result.algo,
        f"{result.filled_quantity:,}/{result.quantity:,}",
        bps(result.arrival_cost_bps),
        bps(result.vwap_slippage_bps),
        bps(result.implementation_shortfall_bps),
        benchmarks(result.arrival_source, result.vwap_source),
    )


def benchmarks(arrival_source: str, vwap_source: str) -> str:
    """'arrival/vwap' benchmark sources in brief ('-' for rows from before they existed)."""
    names = [BENCHMARK_SOURCES.get(s, s) or DASH for s in (arrival_source, vwap_source)]
    return "/".join(names)


def strategy_row(stats: TcaStrategyRow) -> Row:
    """Per-strategy notional-weighted mean costs."""
    return stats.strategy, (
        stats.strategy,
        quantity(stats.orders),
        bps(stats.arrival_cost_bps),
        bps(stats.vwap_slippage_bps),
        bps(stats.implementation_shortfall_bps),
    )


def child_row(child: ChildOrderRow) -> Row:
    """One child order: state, size, what filled at what average price, and when (its
    last fill, or for a child not filled yet its scheduled release)."""
    when = _new_york(child.filled_at or child.release_at or "")
    return child.child_order_id, (
        short_child_id(child.child_order_id),
        child.status,
        quantity(child.quantity),
        quantity(child.filled),
        DASH if child.price is None else price(child.price),
        when,
    )


def short_order_id(client_order_id: str) -> str:
    """'<date>-SYMBOL-n' of an order id '<set>-<date>-SYMBOL-n': the strategy set's hash
    is the same on every row, so the narrow TCA table leaves it out."""
    parts = client_order_id.split("-")
    return "-".join(parts[1:]) if len(parts) >= 4 else client_order_id


def short_child_id(child_order_id: str) -> str:
    """'SYMBOL-slice' of a child id '<set>-<date>-<SYMBOL>-<slice>' (the panel's title
    names the parent), so the column stays readable at 80 columns."""
    parts = child_order_id.split("-")
    return "-".join(parts[-2:]) if len(parts) >= 4 else child_order_id


def _new_york(text: str) -> str:
    """An ISO time as New York wall time (what the exchange and the banner use)."""
    try:
        at = datetime.fromisoformat(str(text))
    except ValueError:
        return str(text)[:19]
    if at.tzinfo is not None:
        at = at.astimezone(NEW_YORK)
    return at.strftime("%Y-%m-%d %H:%M:%S")


class OrdersScreen(TerminalScreen):
    """Blotter on top; child orders, per-order and per-strategy TCA below."""

    def __init__(self) -> None:
        super().__init__()
        self._execution: dict[str, BlotterRow] = {}
        self._selected: str | None = None
        self._fetched_key: tuple | None = None

    def compose_body(self) -> ComposeResult:
        """Blotter, then a row of TCA by order, children and TCA by strategy."""
        with VerticalScroll(id="orders-body"):
            yield TablePanel("ORDER BLOTTER", BLOTTER_COLUMNS, NO_ORDERS, id="blotter")
            with Horizontal(id="orders-costs"):
                yield TablePanel("TCA BY ORDER", TCA_COLUMNS, NO_TCA, id="tca-orders")
                yield TablePanel("CHILD ORDERS / FILLS", CHILD_COLUMNS, NO_CHILDREN, id="children")
                yield TablePanel("TCA BY STRATEGY", STRATEGY_COLUMNS, NO_TCA, id="tca-strategies")

    def on_resize(self, event: Resize) -> None:
        """Cost panels beside each other when they fit, else stacked under the blotter."""
        self.query_one("#orders-body").set_class(event.size.width < NARROW_WIDTH, "-narrow")

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Sync the blotter now; fetch execution details and costs in a worker."""
        self._sync_blotter(snapshot)
        # Refetch when orders or the session change, not on every snapshot version: an
        # engine command itself bumps the version, which would refetch forever.
        key = (
            snapshot.session,
            tuple((o.client_order_id, o.status) for o in snapshot.recent_orders),
        )
        if key != self._fetched_key:
            self._fetched_key = key
            self.run_worker(self.refresh_execution(), group="execution", exclusive=True)

    def _sync_blotter(self, snapshot: EngineSnapshot) -> None:
        self.query_one("#blotter", TablePanel).sync(
            [blotter_row(o, self._execution.get(o.client_order_id)) for o in snapshot.recent_orders]
        )

    async def refresh_execution(self) -> None:
        """Ask the engine for the blotter details, children and TCA, then render them."""
        client = self._qgtm_app.client
        blotter = await client.call("execution.blotter", limit=200)
        costs = await client.call("execution.tca", limit=200)
        self._execution = {row.client_order_id: row for row in blotter}
        if self.shown_snapshot is not None:
            self._sync_blotter(self.shown_snapshot)
        self.query_one("#tca-orders", TablePanel).sync([tca_row(r) for r in costs.orders])
        self.query_one("#tca-strategies", TablePanel).sync(
            [strategy_row(s) for s in costs.strategies]
        )
        await self._show_children()

    async def _show_children(self) -> None:
        rows: list[Row] = []
        if self._selected is not None:
            children = await self._qgtm_app.client.call(
                "execution.children", parent_id=self._selected
            )
            rows = [child_row(c) for c in children]
        panel = self.query_one("#children", TablePanel)
        if not panel.query(LiveTable):
            return  # still composing: the next refresh shows them
        panel.border_title = f"CHILD ORDERS / FILLS {self._selected or ''}".rstrip()
        message = NO_CHILDREN if self._selected is None else ONE_PIECE
        panel.query_one(".empty-state", Static).update(message)
        panel.sync(rows)

    async def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Show the children of the highlighted blotter order."""
        blotter = self.query_one("#blotter", TablePanel).table
        if event.data_table is not blotter or event.row_key.value is None:
            return
        self._selected = str(event.row_key.value)
        await self._show_children()
