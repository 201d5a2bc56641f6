"""Regime: the market regime the engine detects (empty state until the engine reports one)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.formatting import DASH
from qgtm.tui.screens.base import TerminalScreen

NO_REGIME = (
    "Regime: — . The engine does not classify market regimes yet; "
    "this screen fills in when the regime model lands."
)


def regime_label(snapshot: EngineSnapshot) -> str:
    """The snapshot's regime if the engine reports one, else a dash."""
    regime = getattr(snapshot, "regime", None)
    return DASH if regime in (None, "") else str(regime)


class RegimeScreen(TerminalScreen):
    """The current regime, or an honest empty state."""

    def compose_body(self) -> ComposeResult:
        """One panel with the regime line."""
        with Vertical(id="regime-panel", classes="panel") as panel:
            panel.border_title = "REGIME"
            yield Static(NO_REGIME, id="regime", classes="empty-state", markup=False)

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Show the regime once the snapshot carries one."""
        label = regime_label(snapshot)
        line = self.query_one("#regime", Static)
        line.set_class(label == DASH, "empty-state")
        line.update(NO_REGIME if label == DASH else f"Current regime: {label}")
