"""Regime: the market regime the engine's detector labels for today."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from qgtm.core.regime import CONFIRM_DEFAULT
from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.formatting import DASH
from qgtm.tui.screens.base import TerminalScreen

NO_REGIME = (
    "Regime: — . The detector labels a session once it has enough history "
    "(about 300 sessions of bars before the decision)."
)


def regime_label(snapshot: EngineSnapshot) -> str:
    """The snapshot's regime if the engine reports one, else a dash."""
    regime = getattr(snapshot, "regime", None)
    return DASH if regime in (None, "") else str(regime)


def regime_text(snapshot: EngineSnapshot) -> str:
    """The confirmed regime, and today's own reading when it calls for another one."""
    label, raw = regime_label(snapshot), snapshot.regime_raw
    text = f"Current regime: {label} (strategies outside their declared regimes sit out; see STRAT)"
    if raw and raw != label:
        text += (
            f"\nToday's indicators call {raw}: a new regime takes over once they call it "
            f"{CONFIRM_DEFAULT} sessions in a row, so one odd session moves no strategy."
        )
    return text


class RegimeScreen(TerminalScreen):
    """The current regime, or an honest empty state."""

    def compose_body(self) -> ComposeResult:
        """One panel with the regime line."""
        with Vertical(id="regime-panel", classes="panel") as panel:
            panel.border_title = "REGIME"
            yield Static(NO_REGIME, id="regime-line", classes="empty-state", markup=False)

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Show the regime once the snapshot carries one."""
        label = regime_label(snapshot)
        line = self.query_one("#regime-line", Static)
        line.set_class(label == DASH, "empty-state")
        line.update(NO_REGIME if label == DASH else regime_text(snapshot))
