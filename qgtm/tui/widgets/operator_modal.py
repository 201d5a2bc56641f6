"""Operator name + passphrase entry for two-person risk actions.

The passphrase Input is masked; the value goes straight to the engine command and is
never shown, logged or kept by the terminal.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from qgtm.tui.keymap import bind


class OperatorModal(ModalScreen[tuple[str, str] | None]):
    """Asks who is acting: name, then passphrase (masked); Enter submits, Escape cancels."""

    DEFAULT_CSS = """
    OperatorModal { align: center middle; }
    OperatorModal > Vertical {
        width: 60; max-width: 95%; height: auto; padding: 1 2;
        border: thick $warning; background: $surface;
    }
    OperatorModal #operator-title { text-style: bold; color: $warning; margin-bottom: 1; }
    OperatorModal #operator-error { color: $error; height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [bind("operator.cancel", "cancel", "Cancel")]

    def __init__(self, title: str, repeat_passphrase: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.repeat_passphrase = repeat_passphrase
        """Ask for the passphrase twice (new operators), so a typo cannot lock anyone out."""

    def compose(self) -> ComposeResult:
        """Title, name, passphrase, an error line."""
        with Vertical():
            yield Label(self.title_text, id="operator-title", markup=False)
            yield Input(placeholder="operator name", id="operator-name")
            yield Input(placeholder="passphrase", password=True, id="operator-passphrase")
            if self.repeat_passphrase:
                yield Input(placeholder="passphrase again", password=True, id="operator-repeat")
            yield Static("", id="operator-error", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the name moves to the passphrase; Enter in the passphrase submits."""
        name = self.query_one("#operator-name", Input).value.strip()
        passphrase = self.query_one("#operator-passphrase", Input).value
        error = self.query_one("#operator-error", Static)
        if event.input.id == "operator-name" and not passphrase:
            self.query_one("#operator-passphrase", Input).focus()
            return
        if not name or not passphrase:
            error.update("name and passphrase are both needed")
            return
        if self.repeat_passphrase:
            repeat = self.query_one("#operator-repeat", Input)
            if event.input.id == "operator-passphrase" and not repeat.value:
                repeat.focus()
                return
            if repeat.value != passphrase:
                error.update("the two passphrases differ")
                return
        self.dismiss((name, passphrase))

    def action_cancel(self) -> None:
        """Do nothing."""
        self.dismiss(None)
