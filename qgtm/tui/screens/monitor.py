"""Monitor: watchlist, positions, equity curve, orders and fills, signals, alerts, status."""

from __future__ import annotations

from time import monotonic

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical, VerticalScroll
from textual.events import Resize
from textual.timer import Timer
from textual.widgets import Static

from qgtm.core.snapshot import EngineSnapshot, PositionRow, QuoteRow
from qgtm.tui.formatting import (
    DASH,
    money,
    percent,
    price,
    quantity,
    signed_money,
    signed_percent,
)
from qgtm.tui.screens.base import TerminalScreen
from qgtm.tui.screens.orders import NO_ORDERS, ORDER_COLUMNS, order_row
from qgtm.tui.screens.signals import NO_SIGNALS, signal_row
from qgtm.tui.themes import palette
from qgtm.tui.widgets.equity_chart import EquityChart
from qgtm.tui.widgets.live_table import Column, Row
from qgtm.tui.widgets.table_panel import TablePanel

WIDE_WIDTH = 160
"""From this many columns on, panels sit in two equal columns."""
NARROW_WIDTH = 100
"""Below this many columns the panels stack in one scrolling column."""

MAX_ALERTS = 20

WATCHLIST_COLUMNS = (
    Column("symbol", "Symbol", 6),
    Column("sector", "Sector"),
    Column("last", "Last", 9, "right", export="last_price"),
    Column("change", "Chg%", 7, "right"),
    Column("volume", "Volume", 10, "right"),
)
POSITION_COLUMNS = (
    Column("symbol", "Symbol", 6),
    Column("qty", "Qty", 8, "right", export="quantity"),
    Column("avg", "Avg", 9, "right", export="avg_price"),
    Column("last", "Last", 9, "right", export="last_price"),
    Column("value", "Value", 12, "right", export="market_value"),
    Column("upnl", "Unrl P&L", 11, "right", export="unrealized_pnl"),
    Column("weight", "Wt", 6, "right"),
)
NO_QUOTES = "No quotes yet: waiting for the first market session"
NO_POSITIONS = "No positions: the portfolio is flat"
NO_ALERTS = "No alerts"
STARTING_STATUS = "ENGINE starting…"
"""The status line until the first snapshot: the engine is being built (or attached)."""
MONITOR_SIGNALS = 18
MONITOR_SIGNAL_COLUMNS = (
    Column("as_of", "As of", 10),
    Column("symbol", "Symbol", 6),
    Column("side", "Side", 5),
    Column("weight", "Weight", 7, "right"),
)


def quote_row(quote: QuoteRow) -> Row:
    """Watchlist cells for one quote."""
    return quote.symbol, (
        quote.symbol,
        quote.sector,
        price(quote.last),
        signed_percent(quote.change_pct),
        quantity(quote.volume),
    )


def position_row(position: PositionRow) -> Row:
    """Positions cells for one holding."""
    return position.symbol, (
        position.symbol,
        quantity(position.quantity),
        price(position.avg_price),
        price(position.last_price),
        money(position.market_value),
        signed_money(position.unrealized_pnl),
        percent(position.weight),
    )


STALL_FACTOR = 3.0
"""A running replay is STALLED when no step came for this many step intervals..."""
STALL_MIN_S = 10.0
"""...and at least this many seconds (a step of the full engine can take a while)."""
ROTATE_ABOVE = 2.0
"""Replay speed (sessions/s; MAX too) above which renders sync one big table each."""
SETTLE_S = 1.0
"""After this long without a new render, every table is synced to the last snapshot."""
SIGNALS_INTERVAL = 1.0
"""Seconds between reloads of the latest-signals panel while the replay runs."""


def _age(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m"


def status_line(snapshot: EngineSnapshot, health: str, step_age: float | None) -> Text:
    """Engine task health, heartbeat (wall time since the last step), sessions, DD,
    leverage and the last reconciliation, in one line.

    Mode, kill tier, regime, replay state and clock are in the banner and not repeated.
    """
    colours = palette()
    line = Text()
    line.append("ENGINE ")
    line.append(health, style=colours.gain if health in ("ok", "finished") else colours.loss)
    if not snapshot.running:
        line.append("  STEP paused", style=colours.muted)
    elif step_age is not None:
        interval = 1 / snapshot.speed if snapshot.speed > 0 else 0.0
        stalled = health == "ok" and step_age > max(STALL_MIN_S, STALL_FACTOR * interval)
        line.append("  STEP ")
        line.append(
            f"STALLED {_age(step_age)}" if stalled else f"{_age(step_age)} ago",
            style=colours.loss if stalled else "",
        )
    line.append(f"  SESSIONS {snapshot.sessions_done:,}")
    line.append(f"  DD {snapshot.drawdown:.1%}  LEV {snapshot.gross_leverage:.2f}x")
    recon = snapshot.recon
    if recon is None:
        line.append("  RECON " + DASH, style=colours.muted)
    elif recon.discrepancies:
        line.append("  RECON ")
        line.append(f"{len(recon.discrepancies)} diff", style=colours.loss)
    else:
        line.append("  RECON ok")
    return line


class MonitorScreen(TerminalScreen):
    """The trader's home page: market, book, equity and the latest activity."""

    def __init__(self) -> None:
        super().__init__()
        self._alerts_shown: tuple[str, ...] | None = None
        self._signals_for: object = False
        self._signals_at = -SIGNALS_INTERVAL
        self._signals_timer_set = False
        self._turn = 0
        self._settle: Timer | None = None

    def compose_body(self) -> ComposeResult:
        """Status line, then six panels in a grid whose shape follows the terminal width."""
        yield Static(STARTING_STATUS, id="monitor-status", markup=False)
        with Grid(id="monitor-grid"):
            yield TablePanel("WATCHLIST", WATCHLIST_COLUMNS, NO_QUOTES, id="watchlist")
            with Vertical(id="chart-panel", classes="panel") as chart_panel:
                chart_panel.border_title = "EQUITY"
                yield EquityChart(id="equity-chart")
            yield TablePanel("POSITIONS", POSITION_COLUMNS, NO_POSITIONS, id="positions")
            yield TablePanel("ORDERS · FILLS", ORDER_COLUMNS, NO_ORDERS, id="orders")
            yield TablePanel(
                "LATEST SIGNALS", MONITOR_SIGNAL_COLUMNS, NO_SIGNALS, id="signals-panel"
            )
            with VerticalScroll(id="alerts-panel", classes="panel") as alerts_panel:
                alerts_panel.border_title = "ALERTS"
                yield Static(NO_ALERTS, id="alerts", classes="empty-state", markup=False)

    def on_mount(self) -> None:
        """Render the latest snapshot; tick the heartbeat age once a second."""
        super().on_mount()
        self.set_interval(1.0, self._tick_status, name="monitor-heartbeat")

    def _tick_status(self) -> None:
        if self.app.screen is self and self.shown_snapshot is not None:
            self._show_status(self.shown_snapshot)

    def _show_status(self, snapshot: EngineSnapshot) -> None:
        app = self._qgtm_app
        health_of = getattr(app.client, "task_health", None)
        health = health_of() if callable(health_of) else "ok"
        seen = getattr(app, "step_seen_at", None)
        age = None if seen is None else monotonic() - seen
        # one line of fixed height: no relayout of the screen for a new status
        self.query_one("#monitor-status", Static).update(
            status_line(snapshot, health, age), layout=False
        )

    def on_resize(self, event: Resize) -> None:
        """Pick the layout that lets every table show all its columns."""
        grid = self.query_one("#monitor-grid")
        grid.set_class(event.size.width >= WIDE_WIDTH, "-wide")
        grid.set_class(NARROW_WIDTH <= event.size.width < WIDE_WIDTH, "-medium")
        grid.set_class(event.size.width < NARROW_WIDTH, "-narrow")

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Update tables in place, the chart if the curve grew, and the alerts.

        While the replay runs faster than ROTATE_ABOVE sessions a second, each render
        syncs one of the three big tables in turn (each still updates several times a
        second), so one frame never redraws all of them; a full render follows
        SETTLE_S after the last one, and any slower or paused state renders in full.
        """
        syncs = (
            lambda: self.query_one("#watchlist", TablePanel).sync(
                [quote_row(q) for q in snapshot.watchlist]
            ),
            lambda: self.query_one("#positions", TablePanel).sync(
                [position_row(p) for p in snapshot.positions]
            ),
            lambda: self.query_one("#orders", TablePanel).sync(
                [order_row(o) for o in snapshot.recent_orders]
            ),
        )
        if self._settle is not None:
            self._settle.stop()
            self._settle = None
        fast = snapshot.running and (snapshot.speed <= 0 or snapshot.speed > ROTATE_ABOVE)
        if fast:
            syncs[self._turn % len(syncs)]()
            self._turn += 1
            self._settle = self.set_timer(SETTLE_S, self._render_in_full)
        else:
            for sync in syncs:
                sync()
        self.query_one(EquityChart).show_curve(snapshot.equity_curve)
        self._show_alerts(snapshot.alerts)
        self._show_status(snapshot)
        if snapshot.session != self._signals_for:
            self._reload_signals()

    def _render_in_full(self) -> None:
        """The replay went quiet: bring every table up to the last snapshot."""
        self._settle = None
        shown = self.shown_snapshot
        if shown is None or self.app.screen is not self:
            return
        self.query_one("#watchlist", TablePanel).sync([quote_row(q) for q in shown.watchlist])
        self.query_one("#positions", TablePanel).sync([position_row(p) for p in shown.positions])
        self.query_one("#orders", TablePanel).sync([order_row(o) for o in shown.recent_orders])

    def _reload_signals(self) -> None:
        """Reload the latest signals, at most once per SIGNALS_INTERVAL (then once more
        when the interval is up, so the panel ends on the newest session)."""
        wait = self._signals_at + SIGNALS_INTERVAL - monotonic()
        if wait > 0:
            if not self._signals_timer_set:
                self._signals_timer_set = True
                self.set_timer(wait, self._signals_due)
            return
        self._signals_at = monotonic()
        self._signals_for = self.shown_snapshot.session if self.shown_snapshot else None
        self.run_worker(self._load_signals(), exclusive=True, group="monitor-signals")

    def _signals_due(self) -> None:
        self._signals_timer_set = False
        shown = self.shown_snapshot
        if shown is not None and shown.session != self._signals_for and self.app.screen is self:
            self._reload_signals()

    async def _load_signals(self) -> None:
        signals = await self._qgtm_app.client.call("signals.recent", limit=MONITOR_SIGNALS)
        rows = [signal_row(s) for s in signals]
        self.query_one("#signals-panel", TablePanel).sync(
            [(key, (c[0], c[2], c[3], c[4])) for key, c in rows]
        )

    def _show_alerts(self, alerts: tuple[str, ...]) -> None:
        if alerts == self._alerts_shown:
            return
        self._alerts_shown = alerts
        label = self.query_one("#alerts", Static)
        label.set_class(not alerts, "empty-state")
        label.update("\n".join(alerts[:MAX_ALERTS]) if alerts else NO_ALERTS)
