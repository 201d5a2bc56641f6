"""Command-palette entries ("area: Action") for everything the keys can do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from qgtm.tui.app import QGTMApp


@dataclass(frozen=True, slots=True)
class PaletteCommand:
    """One palette entry: what it reads, what it does, and a line of help."""

    name: str
    run: Callable[[], object]
    help: str


class TerminalCommands(Provider):
    """Engine control, screen switching and quitting, named "area: Action"."""

    @property
    def _app(self) -> QGTMApp:
        return self.app  # type: ignore[return-value]

    def commands(self) -> list[PaletteCommand]:
        """The entries that apply now: Pause only while running, Resume only while paused."""
        app = self._app
        running = app.client.snapshot().running
        entries = [
            PaletteCommand("engine: Pause", app.action_pause, "Stop the replay clock (p or space)")
            if running
            else PaletteCommand(
                "engine: Resume", app.action_resume, "Restart the replay clock (p or space)"
            ),
            PaletteCommand("engine: Faster", app.action_faster, "Double the replay speed (+)"),
            PaletteCommand("engine: Slower", app.action_slower, "Halve the replay speed (-)"),
            PaletteCommand(
                "engine: Step one session", app.action_step, "Run the next session now (n)"
            ),
        ]
        entries.append(
            PaletteCommand(
                "recon: Reconcile now", app.action_reconcile, "Compare broker and book now (r)"
            )
        )
        for slot in app.SCREEN_SLOTS:
            entries.append(
                PaletteCommand(
                    f"screen: {slot.title}",
                    partial(app.action_show_screen, slot.mode),
                    f"Switch to the {slot.title} screen ({slot.keys.replace(',', ' or ')})",
                )
            )
        entries.append(PaletteCommand("app: Quit", app.action_quit, "Stop the engine and exit (q)"))
        return entries

    async def discover(self) -> Hits:
        """All current entries, in menu order, for the empty palette."""
        for command in self.commands():
            yield DiscoveryHit(command.name, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        """Entries whose name fuzzily matches `query`."""
        matcher = self.matcher(query)
        for command in self.commands():
            score = matcher.match(command.name)
            if score > 0:
                yield Hit(score, matcher.highlight(command.name), command.run, help=command.help)
