"""The QGTM terminal: one App that wires the engine client to its screens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.client import EngineClient
from qgtm.tui.commands import TerminalCommands
from qgtm.tui.screens.audit import AuditScreen
from qgtm.tui.screens.base import TerminalScreen
from qgtm.tui.screens.data import DataScreen
from qgtm.tui.screens.monitor import MonitorScreen
from qgtm.tui.screens.orders import OrdersScreen
from qgtm.tui.screens.research import ResearchScreen
from qgtm.tui.screens.risk import RiskScreen
from qgtm.tui.themes import THEMES, theme_css_path

REFRESH_HZ = 4.0
"""How often the app reads the engine's snapshot."""


@dataclass(frozen=True, slots=True)
class ScreenSlot:
    """A top-level screen: its mode name, title, class and the keys that show it."""

    mode: str
    title: str
    screen: type[TerminalScreen]
    keys: str


SCREEN_SLOTS = (
    ScreenSlot("monitor", "Monitor", MonitorScreen, "1,f1"),
    ScreenSlot("orders", "Orders", OrdersScreen, "2,f2"),
    ScreenSlot("audit", "Audit", AuditScreen, "3,f3"),
    ScreenSlot("research", "Research", ResearchScreen, "5,f5"),
    ScreenSlot("data", "Data", DataScreen, "8,f8"),
    ScreenSlot("risk", "Risk", RiskScreen, "4,f4"),
)


class QGTMApp(App[None]):
    """Keyboard-driven terminal: reads snapshots from an EngineClient, sends it commands."""

    TITLE = "QGTM"
    COMMANDS = App.COMMANDS | {TerminalCommands}
    SCREEN_SLOTS: ClassVar[tuple[ScreenSlot, ...]] = SCREEN_SLOTS
    MODES: ClassVar = {slot.mode: slot.screen for slot in SCREEN_SLOTS}
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(slot.keys, f"show_screen('{slot.mode}')", slot.title) for slot in SCREEN_SLOTS),
        Binding("p,space", "toggle_pause", "Pause"),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+"),
        Binding("minus", "slower", "Slower", key_display="-"),
        Binding("n", "step", "Step"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, client: EngineClient, theme_name: str = "qgtm-dark") -> None:
        super().__init__(css_path=theme_css_path(theme_name))
        self.client = client
        self.latest: EngineSnapshot | None = None
        """The newest snapshot read from the client; screens render it when shown."""
        self._client_running = False
        for theme in THEMES.values():
            self.register_theme(theme)
        if theme_name in self.available_themes:
            self.theme = theme_name

    async def on_mount(self) -> None:
        """Show the Monitor, start the engine, then poll its snapshot REFRESH_HZ times a second."""
        await self.switch_mode("monitor")
        await self.client.start()
        self._client_running = True
        self.poll_snapshot()
        self.set_interval(1 / REFRESH_HZ, self.poll_snapshot, name="poll-snapshot")

    async def on_unmount(self) -> None:
        """Stop the engine however the app exits."""
        await self._stop_client()

    async def _stop_client(self) -> None:
        if self._client_running:
            self._client_running = False
            await self.client.stop()

    def poll_snapshot(self) -> None:
        """Read the client's snapshot and push it to the active screen if it is news.

        News is a new engine step (`version`) or a change of replay state or kill
        tier, which commands can make between steps.
        """
        snapshot = self.client.snapshot()
        previous = self.latest
        if previous is not None and _same_state(previous, snapshot):
            return
        self.latest = snapshot
        if isinstance(self.screen, TerminalScreen):
            self.screen.show(snapshot)

    # Actions: key bindings and palette commands both land here.

    async def action_show_screen(self, mode: str) -> None:
        """Switch to the screen registered under `mode`, showing the freshest snapshot."""
        await self.switch_mode(mode)
        self.poll_snapshot()

    def action_toggle_pause(self) -> None:
        """Pause a running replay, resume a paused one."""
        if self.client.snapshot().running:
            self.action_pause()
        else:
            self.action_resume()

    def action_pause(self) -> None:
        """Stop the replay clock after the current step."""
        self.client.pause()
        self.poll_snapshot()

    def action_resume(self) -> None:
        """Restart the replay clock."""
        self.client.resume()
        self.poll_snapshot()

    def action_faster(self) -> None:
        """Double the replay speed."""
        self.client.faster()
        self.poll_snapshot()

    def action_slower(self) -> None:
        """Halve the replay speed."""
        self.client.slower()
        self.poll_snapshot()

    async def action_step(self) -> None:
        """Run the next session now, paused or not."""
        await self.client.advance(1)
        self.poll_snapshot()

    async def action_quit(self) -> None:
        """Stop the engine, then exit."""
        await self._stop_client()
        self.exit()


def _same_state(before: EngineSnapshot, after: EngineSnapshot) -> bool:
    return _state_key(before) == _state_key(after)


def _state_key(snapshot: EngineSnapshot) -> tuple[object, ...]:
    return snapshot.version, snapshot.running, snapshot.speed, snapshot.kill_tier
