"""Strategies: the library, the selected strategy's details, live status and last signals.

The screen reads everything through engine commands (`strategies.list`,
`strategies.signals`), so it works the same in-process or attached over the socket.
"""

from __future__ import annotations

import contextlib
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import DataTable, Sparkline, Static

from qgtm.core.results import DecayPoint, LearnStatus, SignalRecord, StrategyInfo
from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.formatting import day, number
from qgtm.tui.screens.base import TerminalScreen
from qgtm.tui.widgets.live_table import Column, LiveTable, Row
from qgtm.tui.widgets.table_panel import TablePanel

LIBRARY_COLUMNS = (
    Column("name", "Strategy", 18),
    Column("family", "Family", 24, when="wide"),
    Column("status", "Status", 14),
    Column("capacity", "Cap $M", 7, "right", export="capacity_musd", when="wide"),
)
SIGNAL_COLUMNS = (
    Column("as_of", "As of", 10),
    Column("symbol", "Symbol", 6),
    Column("side", "Side", 5),
    Column("weight", "Weight", 7, "right"),
    Column("confidence", "Conf", 5, "right"),
    Column("why", "Rationale"),
)
NO_STRATEGIES = "Loading the strategy library from the engine..."
NO_SIGNALS = "No signals recorded for this strategy yet (configure it in [engine] strategies)"


def library_row(entry: StrategyInfo) -> Row:
    """One line of the library table."""
    status = entry.status
    style = "green" if status == "active" else "yellow" if status.startswith("filtered") else "dim"
    short = "filtered" if status.startswith("filtered") else status
    return entry.name, (
        entry.name,
        entry.family,
        Text(short, style=style),
        number(entry.capacity_usd / 1e6, ",.0f"),
    )


def signal_row(signal: SignalRecord) -> Row:
    """One recorded signal."""
    return f"{signal.as_of}|{signal.symbol}", (
        day(signal.as_of),
        signal.symbol,
        signal.side,
        number(signal.weight, ".3f"),
        number(signal.confidence, ".2f"),
        signal.rationale,
    )


def details_text(entry: StrategyInfo) -> str:
    """The selected strategy's declarations as a few plain lines."""
    exposures = ", ".join(f"{k} {v:+.1f}" for k, v in entry.factor_exposures.items()) or "-"
    params = "\n".join(
        f"  {p.name:<12} {p.default:>8g}  [{p.low:g}, {p.high:g}]  {p.description}"
        for p in entry.parameters
    )
    return (
        f"{entry.name} — {entry.description}\n"
        f"family     {entry.family}\n"
        f"status     {entry.status}\n"
        f"regimes    {', '.join(entry.regimes)}\n"
        f"exposures  {exposures}\n"
        f"capacity   ${entry.capacity_usd / 1e6:,.0f}M    warm-up {entry.warmup} sessions\n"
        f"features   {', '.join(entry.features) or '-'}\n"
        f"reference  {entry.reference}\n"
        f"parameters\n{params or '  (none)'}"
    )


def learning_text(status: LearnStatus | None, history: list[DecayPoint]) -> str:
    """Production model, decay status and what the self-learning loop is doing."""
    if status is None:
        return "not monitored yet: the decay monitor starts with the strategy's first signals"
    doing = (status.shadow and f"shadow {status.shadow}") or status.job or "idle"
    first = history[0].session if history else "-"
    return (
        f"model {status.production or '-'}   decay {status.status}   loop {doing}\n"
        f"rolling Sharpe {status.sharpe:+.2f}   hit rate {status.hit_rate:.0%}   "
        f"exposure drift {status.drift:.2f}   (history since {first})"
    )


SHORT_BELOW = 34  # rows: below this the decay sparkline hides
LEARNING_TITLE = "MODEL & DECAY (rolling Sharpe below)"


class StrategiesScreen(TerminalScreen):
    """Library list on the left; details and last signals of the selection on the right."""

    # On a short terminal (80x24) the details shrink and the decay sparkline hides, so
    # the last signals still show (terminal.tcss, "-short").
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (SHORT_BELOW, "-tall")]
    # Narrow: the library and the side panel share the width evenly, and the library
    # shows name and status (family and capacity are in DETAILS).
    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-narrow"), (120, "-wide")]

    def on_resize(self, event: events.Resize) -> None:
        """The learning panel's title mentions the sparkline only where it shows."""
        with contextlib.suppress(NoMatches):
            panel = self.query_one("#strategy-learning", Static)
            short = event.size.height < SHORT_BELOW
            panel.border_title = "MODEL & DECAY" if short else LEARNING_TITLE

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[str, StrategyInfo] = {}
        self.selected: str | None = None
        self.learning: LearnStatus | None = None
        self._listed_version: int | None = None

    def compose_body(self) -> ComposeResult:
        """Library panel beside a details box over the signals panel."""
        with Horizontal(id="strategies-body"):
            yield TablePanel("STRATEGIES", LIBRARY_COLUMNS, NO_STRATEGIES, id="strategy-list")
            with Vertical(id="strategy-side"):
                details = Static("", id="strategy-details", classes="panel")
                details.border_title = "DETAILS"
                yield details
                learning = Static("", id="strategy-learning", classes="panel", markup=False)
                learning.border_title = LEARNING_TITLE
                yield learning
                yield Sparkline([], id="strategy-decay")
                yield TablePanel("LAST SIGNALS", SIGNAL_COLUMNS, NO_SIGNALS, id="strategy-signals")

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Refresh statuses and signals once per engine step."""
        if snapshot.version == self._listed_version:
            return
        self._listed_version = snapshot.version
        self.run_worker(self.refresh_library(), group="strategies", exclusive=True)

    async def refresh_library(self) -> None:
        """Read the library and its live status, then the selection's signals."""
        entries = await self._qgtm_app.client.call("strategies.list")
        if not self._still_here():
            return
        self.entries = {e.name: e for e in entries}
        self.query_one("#strategy-list", TablePanel).sync([library_row(e) for e in entries])
        if self.selected not in self.entries and entries:
            self.selected = entries[0].name
        await self.refresh_selection()

    async def refresh_selection(self) -> None:
        """Details and recorded signals of the selected strategy."""
        if self.selected is None:
            return
        entry = self.entries[self.selected]
        self.query_one("#strategy-details", Static).update(details_text(entry))
        signals = await self._qgtm_app.client.call("strategies.signals", strategy=self.selected)
        if not self._still_here():
            return
        self.query_one("#strategy-signals", TablePanel).sync([signal_row(s) for s in signals])
        await self.refresh_learning()

    async def refresh_learning(self) -> None:
        """The selection's model version, decay status and rolling-Sharpe history."""
        client = self._qgtm_app.client
        statuses = {s.strategy: s for s in await client.call("learn.status")}
        history = await client.call("learn.history", strategy=self.selected)
        if not self._still_here():
            return
        self.learning = statuses.get(self.selected)
        self.query_one("#strategy-learning", Static).update(learning_text(self.learning, history))
        self.query_one("#strategy-decay", Sparkline).data = [h.sharpe for h in history]

    def _still_here(self) -> bool:
        """False once the screen is being torn down (an engine answer can land after)."""
        try:
            self.query_one("#strategy-learning", Static)
        except NoMatches:
            return False
        return self.is_attached

    async def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Moving the cursor in the library selects that strategy."""
        table = self.query_one("#strategy-list", TablePanel).table
        if event.data_table is not table or event.row_key.value is None:
            return
        if event.row_key.value != self.selected:
            self.selected = str(event.row_key.value)
            await self.refresh_selection()

    @property
    def library(self) -> LiveTable:
        """The library table (for tests and key handling)."""
        return self.query_one("#strategy-list", TablePanel).table
