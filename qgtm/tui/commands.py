"""Command-palette entries ("area: Action") for everything the keys can do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from qgtm.core.results import OutboxStatus
from qgtm.tui.screens.risk import add_operator, approve_reset, request_reset
from qgtm.tui.themes import THEMES

if TYPE_CHECKING:
    from qgtm.tui.screens.base import TerminalApp


@dataclass(frozen=True, slots=True)
class PaletteCommand:
    """One palette entry: what it reads, what it does, and a line of help."""

    name: str
    run: Callable[[], object]
    help: str


async def show_outbox_status(app: TerminalApp) -> None:
    """Ask the engine for its publish outbox status and show it as a notification."""
    status: OutboxStatus = await app.client.call("publish.status")
    text = f"outbox: {status.pending} pending, {status.sent} sent"
    if status.oldest_pending:
        text += f", oldest pending since {status.oldest_pending}"
    if status.last_error:
        text += f"\nlast error: {status.last_error}"
    app.notify(text, title="publish", severity="warning" if status.last_error else "information")


class TerminalCommands(Provider):
    """Engine control, screen switching and quitting, named "area: Action"."""

    @property
    def _app(self) -> TerminalApp:
        return self.app  # type: ignore[return-value]

    def commands(self) -> list[PaletteCommand]:
        """The entries that apply now: Pause only while running, Resume only while paused."""
        app = self._app
        running = app.latest is not None and app.client.snapshot().running
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
        entries.append(
            PaletteCommand(
                "publish: Outbox status",
                partial(show_outbox_status, app),
                "Signals waiting for / sent to the publisher, and the last send error",
            )
        )
        entries.extend(_risk_commands(app))
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


def _risk_commands(app: TerminalApp) -> list[PaletteCommand]:
    """Two-person kill-switch reset: each asks for confirmation and the operator's passphrase."""

    def flow(make: Callable[[TerminalApp], Any]) -> Callable[[], object]:
        return lambda: app.run_worker(make(app), group="risk", exclusive=True)

    return [
        PaletteCommand(
            "risk: Request kill-switch reset",
            flow(request_reset),
            "Ask to return the kill tier to NORMAL; a second operator must approve (r on Risk)",
        ),
        PaletteCommand(
            "risk: Approve kill-switch reset",
            flow(approve_reset),
            "Approve another operator's reset request (a on Risk)",
        ),
        PaletteCommand(
            "risk: Add operator",
            flow(add_operator),
            "Register an operator who can request or approve kill-switch resets",
        ),
    ]


class MnemonicCommands(Provider):
    """Every command-line mnemonic (PORT, SIG, GLD, ...) as a palette entry: fuzzy completion."""

    @property
    def _app(self) -> TerminalApp:
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
