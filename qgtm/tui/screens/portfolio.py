"""Portfolio: positions with P&L, weights by sector, and the account summary.

Below NARROW_WIDTH columns the sector table sits under the positions, so both show
every column (value, P&L, weight) whole.
"""

from __future__ import annotations

from collections import defaultdict
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid
from textual.widgets import Static

from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.formatting import money, percent, quantity, signed_money, signed_percent
from qgtm.tui.screens.base import TerminalScreen
from qgtm.tui.screens.monitor import NO_POSITIONS, POSITION_COLUMNS, position_row
from qgtm.tui.widgets.live_table import Column, Row
from qgtm.tui.widgets.table_panel import TablePanel

SECTOR_COLUMNS = (
    Column("sector", "Sector"),
    Column("positions", "Pos", 4, "right"),
    Column("value", "Value", 13, "right", export="market_value"),
    Column("weight", "Weight", 7, "right"),
    Column("upnl", "Unrl P&L", 12, "right", export="unrealized_pnl"),
)
NO_SECTORS = "No exposure: the portfolio is flat"
NARROW_WIDTH = 150
"""Positions (77 columns) at 3/5 and sectors (59) at 2/5 of the width need about this."""


def sector_rows(snapshot: EngineSnapshot) -> list[Row]:
    """Positions summed by universe sector (sector of each symbol from the watchlist)."""
    sector_of = {q.symbol: q.sector for q in snapshot.watchlist}
    count: dict[str, int] = defaultdict(int)
    value: dict[str, float] = defaultdict(float)
    weight: dict[str, float] = defaultdict(float)
    upnl: dict[str, float] = defaultdict(float)
    for p in snapshot.positions:
        sector = sector_of.get(p.symbol, "other")
        count[sector] += 1
        value[sector] += p.market_value
        weight[sector] += p.weight
        upnl[sector] += p.unrealized_pnl
    return [
        (
            sector,
            (
                sector,
                quantity(count[sector]),
                money(value[sector]),
                percent(weight[sector]),
                signed_money(upnl[sector]),
            ),
        )
        for sector in sorted(count, key=lambda s: -abs(weight[s]))
    ]


def summary_text(snapshot: EngineSnapshot) -> Text:
    """Equity, cash, P&L, drawdown and leverage on two lines."""
    initial = snapshot.equity - snapshot.total_pnl
    text = Text()
    text.append(f"Equity {snapshot.equity:,.2f}   Cash {snapshot.cash:,.2f}   ")
    text.append(f"Gross lev {snapshot.gross_leverage:.2f}x\n")
    text.append("Day P&L ")
    text.append_text(signed_money(snapshot.daily_pnl))
    text.append("   Total P&L ")
    text.append_text(signed_money(snapshot.total_pnl))
    text.append(" (")
    text.append_text(signed_percent(snapshot.total_pnl / initial if initial else 0.0))
    text.append(f")   Drawdown {snapshot.drawdown:.2%}")
    return text


class PortfolioScreen(TerminalScreen):
    """The book: summary, positions, sector weights."""

    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [
        (0, "-narrow"),
        (NARROW_WIDTH, "-wide"),
    ]

    def compose_body(self) -> ComposeResult:
        """Summary line above positions and sectors."""
        yield Static("", id="portfolio-summary", classes="panel")
        with Grid(id="portfolio-grid"):
            yield TablePanel("POSITIONS", POSITION_COLUMNS, NO_POSITIONS, id="portfolio-positions")
            yield TablePanel("WEIGHTS BY SECTOR", SECTOR_COLUMNS, NO_SECTORS, id="sectors")

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Update the summary and both tables in place."""
        self.query_one("#portfolio-summary", Static).update(summary_text(snapshot))
        self.query_one("#portfolio-positions", TablePanel).sync(
            [position_row(p) for p in snapshot.positions]
        )
        self.query_one("#sectors", TablePanel).sync(sector_rows(snapshot))
