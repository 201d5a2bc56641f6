"""A titled box around a LiveTable that says honestly when there is nothing to show."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from qgtm.tui.widgets.live_table import Column, LiveTable, Row


class TablePanel(Vertical):
    """A bordered panel: title, table, and an empty-state line while the table has no rows."""

    def __init__(
        self,
        title: str,
        columns: Sequence[Column],
        empty_message: str,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, classes="panel -empty")
        self.border_title = title
        self._columns = columns
        self._empty_message = empty_message

    def compose(self) -> ComposeResult:
        """The table, then the empty-state line below its header."""
        yield LiveTable(self._columns)
        yield Static(self._empty_message, classes="empty-state")

    @property
    def table(self) -> LiveTable:
        """The panel's table."""
        return self.query_one(LiveTable)

    def sync(self, rows: Sequence[Row]) -> None:
        """Show `rows`; the empty-state line appears while there are none."""
        self.table.sync(rows)
        self.set_class(not rows, "-empty")
