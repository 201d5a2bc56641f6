"""The one-line banner at the top of every screen: mode, kill tier, regime, clock, equity,
P&L."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import Resize
from textual.widgets import Label

from qgtm.core.enums import KillTier, Mode
from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.formatting import replay_speed, sim_clock

NARROW_WIDTH = 100
"""Below this many columns the banner drops the brand, the time of day and the cents."""


class Banner(Horizontal):
    """Always-visible status line; `show(snapshot)` refreshes it."""

    def __init__(self) -> None:
        super().__init__(id="banner")
        self._snapshot: EngineSnapshot | None = None

    def compose(self) -> ComposeResult:
        """One label per field; colours come from CSS classes set in `show`."""
        yield Label("QGTM", id="brand")
        yield Label("CONNECTING", id="mode")
        yield Label("", id="kill-tier")
        yield Label("", id="regime")
        yield Label("", id="run-state")
        yield Label("", id="clock")
        yield Label("", id="equity")
        yield Label("", id="day-pnl")

    def on_resize(self, event: Resize) -> None:
        """Switch between the full and the compact layout."""
        self.set_class(event.size.width < NARROW_WIDTH, "-narrow")
        if self._snapshot is not None:
            self.show(self._snapshot)

    def show(self, snapshot: EngineSnapshot) -> None:
        """Render `snapshot`'s mode, tier, regime, replay state, clock, equity and day P&L."""
        self._snapshot = snapshot
        narrow = self.has_class("-narrow")
        mode = self.query_one("#mode", Label)
        mode.update(f" {snapshot.mode_label} ")
        mode.set_class(snapshot.mode is Mode.LIVE, "-live")

        tier = self.query_one("#kill-tier", Label)
        tier.update(f" {snapshot.kill_tier.name} ")
        for each in KillTier:
            tier.set_class(each is snapshot.kill_tier, f"-tier-{each.name.lower()}")

        regime = self.query_one("#regime", Label)
        label = (snapshot.regime or "-").replace("_", "-").upper()
        regime.update(label if narrow else f"REGIME {label}")
        regime.set_class(snapshot.regime == "crisis", "-crisis")

        run_state = self.query_one("#run-state", Label)
        state = "RUNNING" if snapshot.running else "PAUSED"
        run_state.update(f"{state} {replay_speed(snapshot.speed)}")
        run_state.set_class(not snapshot.running, "-paused")

        clock = sim_clock(snapshot.sim_time, snapshot.session)
        self.query_one("#clock", Label).update(clock[:10] if narrow else clock)
        self.query_one("#equity", Label).update(f"EQ {snapshot.equity:,.0f}")

        day_pnl = self.query_one("#day-pnl", Label)
        decimals = 0 if narrow else 2
        day_pnl.update(f"DAY {snapshot.daily_pnl:+,.{decimals}f}")
        day_pnl.set_class(snapshot.daily_pnl > 0, "-gain")
        day_pnl.set_class(snapshot.daily_pnl < 0, "-loss")
