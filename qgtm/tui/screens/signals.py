"""Signals: the latest strategy signals, read from the engine (`signals.recent`).

A signal's rationale is often longer than its column: the line under the table shows the
highlighted signal's rationale whole, wrapped (at 80 columns the column shows its start).
"""

from __future__ import annotations

from datetime import date

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from qgtm.core.results import SignalRecord
from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.formatting import day, number
from qgtm.tui.screens.base import TerminalScreen
from qgtm.tui.themes import palette
from qgtm.tui.widgets.live_table import Column, Row
from qgtm.tui.widgets.table_panel import TablePanel

SIGNAL_COLUMNS = (
    Column("as_of", "As of", 10),
    Column("strategy", "Strategy", 10),
    Column("symbol", "Symbol", 6),
    Column("side", "Side", 5),
    Column("weight", "Weight", 7, "right"),
    Column("confidence", "Conf", 5, "right"),
    Column("rationale", "Rationale"),
)
NO_SIGNALS = "No signals yet: strategies emit their first signals after the warm-up"
SIGNAL_LIMIT = 300


def direction(side: str) -> Text:
    """LONG green, SHORT red, FLAT muted."""
    colours = palette()
    colour = {"LONG": colours.gain, "SHORT": colours.loss}.get(side.upper(), colours.muted)
    return Text(side, style=f"bold {colour}")


def signal_row(signal: SignalRecord) -> Row:
    """Cells for one signal, keyed by (strategy, date, symbol)."""
    return f"{signal.strategy}|{signal.as_of}|{signal.symbol}", (
        day(signal.as_of),
        signal.strategy,
        signal.symbol,
        direction(signal.side),
        number(signal.weight, ".3f"),
        number(signal.confidence, ".2f"),
        Text(signal.rationale),
    )


class SignalsScreen(TerminalScreen):
    """Every strategy's latest signals, newest first; reloaded after each session."""

    def __init__(self) -> None:
        super().__init__()
        self._loaded_for: date | bool | None = False
        self._signals: dict[str, SignalRecord] = {}

    def compose_body(self) -> ComposeResult:
        """The signals table over the highlighted signal's rationale."""
        yield TablePanel("SIGNALS", SIGNAL_COLUMNS, NO_SIGNALS, id="signals")
        yield Static("", id="signal-rationale", classes="panel", markup=False)

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Reload from the engine when the session moved on."""
        if snapshot.session == self._loaded_for:
            return
        self._loaded_for = snapshot.session
        self.run_worker(self._load(), exclusive=True, group="signals")

    async def _load(self) -> None:
        signals = await self._qgtm_app.client.call("signals.recent", limit=SIGNAL_LIMIT)
        rows = [signal_row(s) for s in signals]
        self._signals = {key: signal for (key, _), signal in zip(rows, signals, strict=True)}
        panel = self.query_one("#signals", TablePanel)
        panel.sync(rows)
        keys = panel.table.row_keys
        if keys:
            self._show_rationale(keys[max(0, min(panel.table.cursor_row, len(keys) - 1))])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Show the highlighted signal's rationale whole."""
        if event.row_key.value is not None:
            self._show_rationale(str(event.row_key.value))

    def _show_rationale(self, key: str) -> None:
        signal = self._signals.get(key)
        if signal is None:
            return
        line = self.query_one("#signal-rationale", Static)
        line.border_title = f"WHY {signal.strategy} {signal.side} {signal.symbol} {signal.as_of}"
        line.update(signal.rationale or "-")
