"""The one-line banner at the top of every screen: mode, kill tier, regime, clock, equity,
P&L, and, for a terminal attached to a daemon, which daemon and since when."""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.events import Resize
from textual.widgets import Label

from qgtm.core.enums import KillTier, Mode
from qgtm.core.protocol import Hello
from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.formatting import replay_speed, sim_clock

NARROW_WIDTH = 100
"""Below this many columns the banner drops the brand, the time of day and the cents."""


NARROW_REGIMES = {"MEAN-REVERTING": "MEAN-REV"}
"""Shorter regime names for the narrow banner."""


def attached_text(info: Hello, narrow: bool = False, now: datetime | None = None) -> str:
    """'ATTACHED pid 1234 since 14:02' (the daemon's start, local time; with its date
    when that is not today); narrow: 'ATT' (an 80-column banner has no room for more;
    the app says which daemon in a notification when it attaches)."""
    if narrow:
        return "ATT"
    started = info.started_at.astimezone()
    today = (now or datetime.now(started.tzinfo)).astimezone(started.tzinfo).date()
    since = f"{started:%H:%M}" if started.date() == today else f"{started:%Y-%m-%d %H:%M}"
    return f"ATTACHED pid {info.pid} since {since}"


class Banner(Horizontal):
    """Always-visible status line; `show(snapshot, attached)` refreshes it."""

    def __init__(self) -> None:
        super().__init__(id="banner")
        self._snapshot: EngineSnapshot | None = None
        self._attached: Hello | None = None
        self._texts: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        """One label per field; colours come from CSS classes set in `show`."""
        yield Label("QGTM", id="brand")
        yield Label("STARTING", id="mode")  # until the first snapshot
        yield Label("", id="attached")  # shown only when attached (class -attached)
        yield Label("", id="kill-tier")
        yield Label("", id="regime")
        yield Label("", id="run-state")
        yield Label("", id="clock")
        yield Label("", id="equity")
        yield Label("", id="day-pnl")

    def on_resize(self, event: Resize) -> None:
        """Switch between the full and the compact layout."""
        self.set_class(event.size.width < NARROW_WIDTH, "-narrow")
        self._texts.clear()
        if self._snapshot is not None:
            self.show(self._snapshot, self._attached)

    def _set(self, label_id: str, text: str, *, fixed: bool = False) -> None:
        """Update one field only if its text changed; relayout only if its width did.

        During a fast replay the banner is refreshed several times a second; a relayout
        of the whole screen for every field would cost the key path most of a frame.
        """
        before = self._texts.get(label_id)
        if before == text:
            return
        self._texts[label_id] = text
        label = self.query_one(f"#{label_id}", Label)
        resized = not fixed and (before is None or len(before) != len(text))
        label.update(text, layout=resized)

    def show(self, snapshot: EngineSnapshot, attached: Hello | None = None) -> None:
        """Render `snapshot`'s mode, tier, regime, replay state, clock, equity and day P&L,
        and `attached` (the hello of the daemon this terminal is attached to; None in
        process, where nothing of the kind shows).

        Narrow (< NARROW_WIDTH columns, e.g. 80x24): no brand, no time of day, no cents,
        one space between fields, a paused replay reads just PAUSED and a running one
        `RUN <sessions/s>`, so every field fits on one 80-column line.
        """
        self._snapshot, self._attached = snapshot, attached
        narrow = self.has_class("-narrow")
        mode_text = snapshot.mode_label.replace(" · ", "·") if narrow else snapshot.mode_label
        self._set("mode", f" {mode_text} ")
        self.query_one("#mode", Label).set_class(snapshot.mode is Mode.LIVE, "-live")
        self.set_class(attached is not None, "-attached")
        if attached is not None:
            self._set("attached", attached_text(attached, narrow))

        self._set("kill-tier", f" {snapshot.kill_tier.name} ")
        tier = self.query_one("#kill-tier", Label)
        for each in KillTier:
            tier.set_class(each is snapshot.kill_tier, f"-tier-{each.name.lower()}")

        label = (snapshot.regime or "-").replace("_", "-").upper()
        if narrow:
            self._set("regime", NARROW_REGIMES.get(label, label))
        else:
            self._set("regime", f"REGIME {label}")
        self.query_one("#regime", Label).set_class(snapshot.regime == "crisis", "-crisis")

        state = "RUNNING" if snapshot.running else "PAUSED"
        speed = replay_speed(snapshot.speed)
        if narrow:
            speed = speed.removesuffix(" s/s")
            self._set("run-state", f"RUN {speed}" if snapshot.running else state)
        else:
            self._set("run-state", f"{state} {speed}")
        self.query_one("#run-state", Label).set_class(not snapshot.running, "-paused")

        clock = sim_clock(snapshot.sim_time, snapshot.session)
        self._set("clock", clock[:10] if narrow else clock)
        self._set("equity", f"EQ {snapshot.equity:,.0f}")

        decimals = 0 if narrow else 2
        # fixed width in terminal.tcss: the day's P&L changes length every session
        self._set("day-pnl", f"DAY {snapshot.daily_pnl:+,.{decimals}f}", fixed=True)
        day_pnl = self.query_one("#day-pnl", Label)
        day_pnl.set_class(snapshot.daily_pnl > 0, "-gain")
        day_pnl.set_class(snapshot.daily_pnl < 0, "-loss")
