"""Confirmation dialog for anything that trades or changes risk state.

It states exactly what will happen; Enter/y confirms, Escape/n cancels. The result
(True/False) comes back through `push_screen(..., callback)` or `push_screen_wait`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from qgtm.tui.keymap import bind


class ConfirmModal(ModalScreen[bool]):
    """Asks before acting: a title, the consequences line by line, confirm or cancel."""

    DEFAULT_CSS = """
    ConfirmModal { align: center middle; }
    ConfirmModal > Vertical {
        width: 72; max-width: 95%; height: auto; max-height: 100%; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    ConfirmModal #confirm-details { height: auto; max-height: 60vh; }
    ConfirmModal #confirm-title { text-style: bold; color: $warning; margin-bottom: 1; }
    ConfirmModal .confirm-detail { margin-left: 1; }
    ConfirmModal Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    ConfirmModal Button { margin-left: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("confirm.yes", "confirm", "Confirm"),
        bind("confirm.no", "cancel", "Cancel"),
    ]

    def __init__(self, title: str, details: Sequence[str], confirm_label: str = "Confirm") -> None:
        super().__init__()
        self.title_text = title
        self.details = tuple(details)
        self.confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        """Title, one line per consequence (scrolling if many), the two buttons with keys."""
        with Vertical():
            yield Label(self.title_text, id="confirm-title", markup=False)
            # a long list (one line per order) scrolls; title and buttons always show
            with VerticalScroll(id="confirm-details"):
                for line in self.details:
                    yield Static(f"• {line}", classes="confirm-detail", markup=False)
            with Horizontal():
                yield Button(escape("Cancel [n]"), id="cancel")
                yield Button(escape(f"{self.confirm_label} [y]"), id="confirm", variant="warning")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Mouse still works."""
        self.dismiss(event.button.id == "confirm")

    def action_confirm(self) -> None:
        """Go ahead."""
        self.dismiss(True)

    def action_cancel(self) -> None:
        """Do nothing."""
        self.dismiss(False)
