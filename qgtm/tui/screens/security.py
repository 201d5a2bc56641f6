"""Security page: one symbol's chart, returns, volatility, signals, position and orders.

Bars and signals come from the engine (`market.bars`, `signals.recent`); position and
orders from the snapshot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.events import Resize
from textual.widgets import Static

from qgtm.core.results import Bar
from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.formatting import number, percent, signed_percent
from qgtm.tui.screens.base import TerminalScreen
from qgtm.tui.screens.orders import NO_ORDERS, ORDER_COLUMNS, order_row
from qgtm.tui.screens.signals import NO_SIGNALS, SIGNAL_COLUMNS, signal_row
from qgtm.tui.widgets.live_table import Column, Row
from qgtm.tui.widgets.price_chart import PriceVolumeChart
from qgtm.tui.widgets.table_panel import TablePanel

NARROW_WIDTH = 100
LOOKBACK = 252
HORIZONS = (("1D", 1), ("1W", 5), ("1M", 21), ("3M", 63), ("6M", 126), ("1Y", 252))
VOL_WINDOWS = (21, 63)
TRADING_DAYS = 252
STATS_COLUMNS = (Column("stat", "Stat", 10), Column("value", "Value", 10, "right"))


def horizon_return(closes: Sequence[float], sessions: int) -> float | None:
    """Simple return over `sessions` sessions: close[-1] / close[-1 - sessions] - 1."""
    if len(closes) <= sessions:
        return None
    return closes[-1] / closes[-1 - sessions] - 1.0


def realised_vol(closes: Sequence[float], window: int) -> float | None:
    """Annualised volatility: sample stdev of the last `window` daily log returns * sqrt(252)."""
    if len(closes) <= window or window < 2:
        return None
    logs = [math.log(closes[i] / closes[i - 1]) for i in range(len(closes) - window, len(closes))]
    mean = sum(logs) / window
    variance = sum((x - mean) ** 2 for x in logs) / (window - 1)
    return math.sqrt(variance) * math.sqrt(TRADING_DAYS)


def stats_rows(bars: Sequence[Bar]) -> list[Row]:
    """Returns over each horizon and realised vols, a dash where history is too short."""
    closes = [b.close for b in bars]
    rows: list[Row] = []
    for label, sessions in HORIZONS:
        value = horizon_return(closes, sessions)
        cell = number(None, "", "frac") if value is None else signed_percent(value)
        rows.append((f"ret{label}", (f"Return {label}", cell)))
    for window in VOL_WINDOWS:
        vol = realised_vol(closes, window)
        cell = percent(vol)
        rows.append((f"vol{window}", (f"Vol {window}d", cell)))
    return rows


class SecurityScreen(TerminalScreen):
    """Everything about the symbol in `app.security_symbol`."""

    def __init__(self) -> None:
        super().__init__()
        self._loaded: tuple[str, date | None] | None = None

    def compose_body(self) -> ComposeResult:
        """Position line; chart and stats; signals and orders."""
        yield Static("", id="security-position", classes="panel")
        with Grid(id="security-grid"):
            with Vertical(id="security-chart-panel", classes="panel") as chart_panel:
                chart_panel.border_title = "PRICE · VOLUME"
                yield PriceVolumeChart(id="security-chart")
            yield TablePanel("RETURNS · VOL", STATS_COLUMNS, "No bars yet", id="security-stats")
            yield TablePanel("SIGNALS", SIGNAL_COLUMNS, NO_SIGNALS, id="security-signals")
            yield TablePanel("ORDERS", ORDER_COLUMNS, NO_ORDERS, id="security-orders")

    def on_resize(self, event: Resize) -> None:
        """Below NARROW_WIDTH columns the panels stack in one scrolling column."""
        self.query_one("#security-grid").set_class(event.size.width < NARROW_WIDTH, "-narrow")

    @property
    def symbol(self) -> str:
        """The symbol shown."""
        return self._qgtm_app.security_symbol

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Position and orders from the snapshot; bars and signals reloaded per session."""
        symbol = self.symbol
        self.query_one("#security-position", Static).update(self._position_text(snapshot))
        self.query_one("#security-orders", TablePanel).sync(
            [order_row(o) for o in snapshot.recent_orders if o.symbol == symbol]
        )
        if self._loaded != (symbol, snapshot.session):
            self._loaded = (symbol, snapshot.session)
            self.run_worker(self._load(symbol), exclusive=True, group="security")

    def _position_text(self, snapshot: EngineSnapshot) -> Text:
        symbol = self.symbol
        quote = next((q for q in snapshot.watchlist if q.symbol == symbol), None)
        text = Text(f"{symbol}", style="bold")
        if quote is not None:
            text.append(f"  {quote.sector}  last {quote.last:,.2f} ")
            text.append_text(signed_percent(quote.change_pct))
            text.append(" ")
        held = next((p for p in snapshot.positions if p.symbol == symbol), None)
        if held is None:
            text.append("   no position")
        else:
            text.append(
                f"   position {held.quantity:,} @ {held.avg_price:,.2f}  "
                f"value {held.market_value:,.2f}  weight {held.weight:.1%}  unrl "
            )
            text.append(f"{held.unrealized_pnl:+,.2f}")
        return text

    async def _load(self, symbol: str) -> None:
        client = self._qgtm_app.client
        bars = await client.call("market.bars", symbol=symbol, lookback=LOOKBACK)
        signals = await client.call("signals.recent", symbol=symbol, limit=100)
        self.query_one(PriceVolumeChart).show_bars(symbol, bars)
        self.query_one("#security-stats", TablePanel).sync(stats_rows(bars))
        self.query_one("#security-signals", TablePanel).sync([signal_row(s) for s in signals])
        self.query_one("#security-chart-panel").border_title = f"{symbol} · PRICE · VOLUME"
