"""Pick one stored backtest (`qgtm backtest --runs`) to load into the Research screen.

Arrows move, Enter loads the highlighted run, type to narrow the list by id, Escape
closes. The result (a run id, or None) comes back through `push_screen(..., callback)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from qgtm.core.results import StoredRunRow
from qgtm.tui.keymap import bind


def run_label(row: StoredRunRow, id_width: int = 0) -> Text:
    """'tsmom-3bd0b1d19286  event live  2008-04..2025-12  SR -0.17' (ids padded to
    `id_width`, so the columns line up)."""
    sharpe = row.sharpe
    return Text(
        f"{row.run:<{id_width}}  {row.runner} {row.decision or '':<6}  "
        f"{row.start[:7]}..{row.end[:7]}  "
        f"SR {'' if sharpe is None else f'{sharpe:+.2f}'}",
        no_wrap=True,
        overflow="ellipsis",
    )


class RunPicker(ModalScreen[str | None]):
    """The stored runs, newest first; Enter picks one."""

    DEFAULT_CSS = """
    RunPicker { align: center middle; }
    RunPicker > Vertical {
        width: 90; max-width: 98%; height: auto; max-height: 90%; padding: 0 1;
        border: thick $accent; background: $surface;
    }
    RunPicker #picker-title { text-style: bold; margin-bottom: 1; }
    RunPicker OptionList { height: auto; max-height: 20; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [bind("stored_runs.close", "cancel", "Close")]

    def __init__(self, rows: Sequence[StoredRunRow]) -> None:
        super().__init__()
        self.rows = list(rows)

    def compose(self) -> ComposeResult:
        """Title, a filter line, the list."""
        with Vertical():
            yield Label(
                f"{len(self.rows)} stored runs, newest first: Enter loads one, Escape closes",
                id="picker-title",
            )
            yield Input(placeholder="filter by id…", id="picker-filter")
            yield OptionList(*self._options(""), id="picker-list")

    def _options(self, text: str) -> list[Option]:
        wanted = text.strip().lower()
        width = max((len(row.run) for row in self.rows), default=0)
        return [
            Option(run_label(row, width), id=row.run)
            for row in self.rows
            if wanted in row.run.lower()
        ]

    def on_input_changed(self, event: Input.Changed) -> None:
        """Narrow the list to ids containing the typed text."""
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options(self._options(event.value))
        if options.option_count:
            options.highlighted = 0

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        """Enter in the filter line loads the first (highlighted) match."""
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    def on_key(self, event: events.Key) -> None:
        """Down/up from the filter line move through the list."""
        if event.key in ("down", "up") and isinstance(self.focused, Input):
            options = self.query_one(OptionList)
            options.action_cursor_down() if event.key == "down" else options.action_cursor_up()
            event.stop()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Enter (or a click) on a run loads it."""
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Close without loading."""
        self.dismiss(None)
