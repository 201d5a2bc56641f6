"""What every terminal screen shares: the banner on top, the key footer (KeyFooter) below.

The contract with the app: the app calls `show(snapshot)` on the active screen when
the engine's snapshot changes; a screen that becomes active again renders the
app's latest snapshot itself, so it never shows stale data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.screen import Screen

from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.widgets.banner import Banner
from qgtm.tui.widgets.equity_chart import EquityChart
from qgtm.tui.widgets.key_footer import KeyFooter
from qgtm.tui.widgets.live_table import LiveTable

if TYPE_CHECKING:
    from qgtm.core.protocol import EngineClient
    from qgtm.tui.mnemonics import Mnemonic, Target


class TerminalApp(Protocol):
    """What screens and palette commands use of the terminal app (`QGTMApp` is the one).

    Stated beside the screens' base so that screens and palette commands depend on this
    contract, not on the app module that imports them all."""

    SCREEN_SLOTS: ClassVar[tuple[ScreenSlot, ...]]
    client: EngineClient
    latest: EngineSnapshot | None
    mnemonics: dict[str, Mnemonic]

    def notify(self, message: str, *, title: str = "", severity: Any = "information") -> None:
        """Show a toast (Textual's App.notify)."""

    async def push_screen_wait(self, screen: Any) -> Any:
        """Push a modal and wait for its answer (Textual's App.push_screen_wait)."""

    def run_worker(self, work: Any, *, group: str = "default", exclusive: bool = False) -> Any:
        """Run `work` in a worker (Textual's App.run_worker)."""

    def poll_snapshot(self) -> None:
        """Read the client's snapshot now and render it."""

    async def go(self, target: Target) -> None:
        """Show the screen a mnemonic names."""

    async def action_show_screen(self, mode: str) -> None:
        """Switch to the screen of `mode`."""

    def action_command_line(self) -> None:
        """Open the mnemonic command line."""

    def action_set_theme(self, theme_name: str) -> None:
        """Switch theme (remembered)."""

    async def action_flatten(self) -> None:
        """Flatten every position after confirmation."""

    def action_pause(self) -> None:
        """Stop the replay clock."""

    def action_resume(self) -> None:
        """Restart the replay clock."""

    def action_faster(self) -> None:
        """Double the replay speed."""

    def action_slower(self) -> None:
        """Halve the replay speed."""

    async def action_step(self) -> None:
        """Run the next session now."""

    async def action_reconcile(self) -> None:
        """Compare broker and book now."""

    async def action_quit(self) -> None:
        """Stop the engine and exit."""


class TerminalScreen(Screen):
    """Base screen: banner, body from `compose_body`, footer; renders via `show`."""

    def __init__(self) -> None:
        super().__init__()
        self._shown: EngineSnapshot | None = None

    def compose(self) -> ComposeResult:
        """Banner, the screen's own body, footer."""
        yield Banner()
        yield from self.compose_body()
        yield KeyFooter()

    def compose_body(self) -> ComposeResult:
        """The screen's content between banner and footer."""
        yield from ()

    @property
    def shown_snapshot(self) -> EngineSnapshot | None:
        """The snapshot this screen last rendered."""
        return self._shown

    def on_mount(self) -> None:
        """Render the app's latest snapshot as soon as the widgets exist."""
        self._catch_up()

    def on_screen_resume(self) -> None:
        """Catch up with snapshots that arrived while another screen was active."""
        self._catch_up()

    def _catch_up(self) -> None:
        latest = self._qgtm_app.latest
        if latest is not None and latest is not self._shown:
            self.show(latest)

    @property
    def _qgtm_app(self) -> TerminalApp:
        return self.app  # type: ignore[return-value]

    def show(self, snapshot: EngineSnapshot) -> None:
        """Render `snapshot`: the banner here, the body in `show_body`."""
        if not self.is_mounted:
            return
        try:
            banner = self.query_one(Banner)
            self._shown = snapshot
            banner.show(snapshot, getattr(self._qgtm_app.client, "info", None))
            self.show_body(snapshot)
        except NoMatches:
            return  # the screen is being torn down (app exiting) while a poll fires

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Render the screen's own content; screens override this."""

    def restyle(self) -> None:
        """Redraw everything after a theme change (table cells carry theme colours)."""
        for table in self.query(LiveTable):
            table.repaint()
        for chart in self.query(EquityChart):
            chart.redraw()
        for footer in self.query(KeyFooter):
            footer.refresh_keys()
        if self._shown is not None:
            self.show(self._shown)


@dataclass(frozen=True, slots=True)
class ScreenSlot:
    """A top-level screen: mode name, title, class, the keys and mnemonics that show it."""

    mode: str
    title: str
    screen: type[TerminalScreen]
    keys: str
    mnemonics: tuple[str, ...] = ()
