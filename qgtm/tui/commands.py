"""Command-palette entries ("area: Action") for everything the keys can do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from qgtm.tui.themes import THEMES

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
        for slot in app.SCREEN_SLOTS:
            entries.append(
                PaletteCommand(
                    f"screen: {slot.title}",
                    partial(app.action_show_screen, slot.mode),
                    f"Switch to the {slot.title} screen "
                    f"({slot.keys.replace(',', ' or ') or ', '.join(slot.mnemonics)})",
                )
            )
        entries.append(
            PaletteCommand(
                "engine: Flatten all positions",
                app.action_flatten,
                "Cancel working orders and close every position at the next open (asks first)",
            )
        )
        entries.append(
            PaletteCommand("app: Command line", app.action_command_line, "Type a mnemonic (:)")
        )
        for theme_name in sorted(THEMES):
            entries.append(
                PaletteCommand(
                    f"theme: {theme_name}",
                    partial(app.action_set_theme, theme_name),
                    f"Switch to the {theme_name} theme (remembered)",
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


class MnemonicCommands(Provider):
    """Every command-line mnemonic (PORT, SIG, GLD, ...) as a palette entry: fuzzy completion."""

    @property
    def _app(self) -> QGTMApp:
        return self.app  # type: ignore[return-value]

    def commands(self) -> list[PaletteCommand]:
        """One entry per mnemonic, "GLD  Security page GLD"."""
        app = self._app
        return [
            PaletteCommand(
                f"{m.word}  {m.title}", partial(app.go, m.target), f"mnemonic {m.word} (: {m.word})"
            )
            for m in app.mnemonics.values()
        ]

    async def search(self, query: str) -> Hits:
        """Mnemonics whose word or title fuzzily matches `query`."""
        matcher = self.matcher(query)
        for command in self.commands():
            score = matcher.match(command.name)
            if score > 0:
                yield Hit(score, matcher.highlight(command.name), command.run, help=command.help)
