"""Help: every mnemonic and every key binding, generated from the app's own data.

Below NARROW_WIDTH columns the mnemonics sit above the keys, so the keys table has the
full width and the binding id (what a user needs to remap a key) shows whole.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid

from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.keymap import keys_label
from qgtm.tui.screens.base import TerminalScreen
from qgtm.tui.widgets.live_table import Column
from qgtm.tui.widgets.table_panel import TablePanel

MNEMONIC_COLUMNS = (Column("word", "Mnemonic", 8), Column("opens", "Opens"))
NARROW_WIDTH = 120
"""Mnemonics (26 columns) beside keys (75) need about this many."""
KEY_COLUMNS = (
    Column("keys", "Keys", 12),
    Column("what", "Action", 14),
    Column("where", "Where", 12),
    Column("id", "Binding id"),
)


class HelpScreen(TerminalScreen):
    """Two tables: mnemonics for the command line, and key bindings with their ids."""

    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [
        (0, "-narrow"),
        (NARROW_WIDTH, "-wide"),
    ]

    def compose_body(self) -> ComposeResult:
        """Mnemonics beside keys."""
        with Grid(id="help-grid"):
            yield TablePanel(
                "MNEMONICS  (press : then type one)", MNEMONIC_COLUMNS, "", id="help-mnemonics"
            )
            yield TablePanel("KEYS  (remap in [tui.keymap] by id)", KEY_COLUMNS, "", id="help-keys")

    def on_mount(self) -> None:
        """Fill both tables from the app's data, then render the banner."""
        app = self._qgtm_app
        self.query_one("#help-mnemonics", TablePanel).sync(
            [(m.word, (m.word, m.title)) for m in app.mnemonics.values()]
        )
        self.query_one("#help-keys", TablePanel).sync(
            [
                (f"{where}|{binding_id}", (Text(keys_label(keys)), what, where, binding_id))
                for binding_id, keys, what, where in app.binding_table()
            ]
        )
        super().on_mount()

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Nothing live here."""
