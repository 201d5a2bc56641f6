"""An honest empty state for a screen whose feature has not landed yet.

`placeholder_screen(title, message)` makes a TerminalScreen class that says so; the app
lists such placeholders in PLACEHOLDER_SLOTS, and a real slot with the same mnemonic
takes over automatically (then the placeholder entry can simply be deleted).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from qgtm.tui.screens.base import TerminalScreen


class EmptyStateScreen(TerminalScreen):
    """A titled panel with one line explaining what will appear here and when."""

    PANEL_TITLE: ClassVar[str] = ""
    MESSAGE: ClassVar[str] = ""

    def compose_body(self) -> ComposeResult:
        """The explanation in a bordered panel."""
        with Vertical(id="empty-panel", classes="panel") as panel:
            panel.border_title = self.PANEL_TITLE.upper()
            yield Static(self.MESSAGE, id="empty-message", classes="empty-state", markup=False)


def placeholder_screen(title: str, message: str) -> type[EmptyStateScreen]:
    """A screen class titled `title` showing `message`."""
    name = "".join(part.capitalize() for part in title.split()) + "PlaceholderScreen"
    return type(name, (EmptyStateScreen,), {"PANEL_TITLE": title, "MESSAGE": message})
