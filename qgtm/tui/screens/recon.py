"""Recon: the latest broker-vs-book reconciliation, its discrepancies and stale positions."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import Static

from qgtm.core.snapshot import EngineSnapshot, ReconRow
from qgtm.tui.formatting import quantity
from qgtm.tui.keymap import bind
from qgtm.tui.screens.base import TerminalScreen
from qgtm.tui.widgets.live_table import Column, Row
from qgtm.tui.widgets.table_panel import TablePanel

RECON_COLUMNS = (
    Column("kind", "Kind", 18),
    Column("symbol", "Symbol", 7),
    Column("severity", "Severity", 9),
    Column("broker", "Broker", 9, "right", export="broker_quantity"),
    Column("local", "Book", 9, "right", export="book_quantity"),
    Column("action", "Action", 13),
    Column("detail", "Detail"),
)
NO_DISCREPANCIES = "Broker and book agree: no discrepancies in the latest reconciliation"
NOT_RUN = "No reconciliation yet: the daemon runs one every 60 s; press r to run one now"
NO_RUN_TABLE = "No reconciliation has run yet, so there is nothing to compare: press r"
SEVERITY_STYLE = {"CRITICAL": "bold red", "WARNING": "yellow", "INFO": "dim"}


def recon_row(item: ReconRow) -> Row:
    """Cells for one discrepancy."""
    return f"{item.kind}:{item.symbol}", (
        item.kind,
        item.symbol,
        Text(item.severity, style=SEVERITY_STYLE.get(item.severity, "")),
        quantity(item.broker_qty),
        quantity(item.local_qty),
        item.action,
        Text(item.detail),
    )


def recon_summary(snapshot: EngineSnapshot) -> str:
    """One line: when, how many runs, what each side holds, what is stale."""
    view = snapshot.recon
    if view is None:
        return NOT_RUN
    stale = ", ".join(view.stale) if view.stale else "none"
    return (
        f"last run {view.at} · runs {view.runs:,} · broker {view.broker_positions} "
        f"positions · book {view.local_positions} · discrepancies "
        f"{len(view.discrepancies)} · stale: {stale}"
    )


class ReconScreen(TerminalScreen):
    """Reconciliation status; `r` runs one now."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("recon.reconcile", "app.reconcile", "Reconcile now")
    ]

    def compose_body(self) -> ComposeResult:
        """Summary line above the discrepancy table."""
        yield Static(NOT_RUN, id="recon-summary")
        yield TablePanel("RECONCILIATION", RECON_COLUMNS, NO_RUN_TABLE, id="recon")

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Sync summary and table with the snapshot's latest recon."""
        self.query_one("#recon-summary", Static).update(recon_summary(snapshot))
        rows = snapshot.recon.discrepancies if snapshot.recon else ()
        panel = self.query_one("#recon", TablePanel)
        # "agree" only once a reconciliation has actually compared broker and book
        panel.set_empty_message(NO_DISCREPANCIES if snapshot.recon else NO_RUN_TABLE)
        panel.sync([recon_row(r) for r in rows])
