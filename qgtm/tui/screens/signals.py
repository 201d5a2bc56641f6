"""Signals: the latest strategy signals, read from the engine (`signals.recent`)."""

from __future__ import annotations

from datetime import date

from rich.text import Text
from textual.app import ComposeResult

from qgtm.core.snapshot import EngineSnapshot
from qgtm.engine.live.queries import SignalRecord
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

    def compose_body(self) -> ComposeResult:
        """One full-height signals table."""
        yield TablePanel("SIGNALS", SIGNAL_COLUMNS, NO_SIGNALS, id="signals")

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Reload from the engine when the session moved on."""
        if snapshot.session == self._loaded_for:
            return
        self._loaded_for = snapshot.session
        self.run_worker(self._load(), exclusive=True, group="signals")

    async def _load(self) -> None:
        signals = await self._qgtm_app.client.call("signals.recent", limit=SIGNAL_LIMIT)
        self.query_one("#signals", TablePanel).sync([signal_row(s) for s in signals])
