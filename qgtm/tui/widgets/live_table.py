"""A DataTable that follows a changing list of keyed rows without flicker.

Rows are identified by key. When the keys are unchanged, only cells whose value
changed are updated in place; rows are added or removed only when the set of keys
changes, and the cursor stays on the row it was on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.console import RenderableType
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

Cell = RenderableType
Row = tuple[str, Sequence[Cell]]
"""A row key and its cells, one per column in column order."""


@dataclass(frozen=True, slots=True)
class Column:
    """One table column: key, header label, content width (None: fit content), alignment."""

    key: str
    label: str
    width: int | None = None
    align: Literal["left", "right"] = "left"


class LiveTable(DataTable):
    """A row-cursor table updated from snapshots through `sync(rows)`."""

    DEFAULT_CSS = """
    LiveTable {
        height: 1fr;
    }
    """

    def __init__(self, columns: Sequence[Column], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._column_specs = tuple(columns)
        self._keys: list[str] = []
        self._cells: dict[str, tuple[Cell, ...]] = {}

    def on_mount(self) -> None:
        """Add the columns; headers of right-aligned columns are right-aligned too."""
        for column in self._column_specs:
            label = Text(column.label, justify=column.align)
            self.add_column(label, key=column.key, width=column.width)

    @property
    def row_keys(self) -> list[str]:
        """Row keys in display order."""
        return list(self._keys)

    def sync(self, rows: Sequence[Row]) -> None:
        """Make the table show `rows`, in order, touching only what changed.

        Strings are shown verbatim: engine text is never parsed as markup.
        """
        verbatim = [(key, _verbatim(cells)) for key, cells in rows]
        wanted = [key for key, _ in verbatim]
        wanted_set = set(wanted)
        kept = [key for key in self._keys if key in wanted_set]
        if wanted[: len(kept)] != kept:
            self._rebuild(verbatim)
            return
        for key in self._keys:
            if key not in wanted_set:
                self.remove_row(key)
                del self._cells[key]
        for key, cells in verbatim[: len(kept)]:
            self._update_row(key, cells)
        for key, cells in verbatim[len(kept) :]:
            self.add_row(*cells, key=key)
            self._cells[key] = cells
        self._keys = wanted

    def _update_row(self, key: str, cells: tuple[Cell, ...]) -> None:
        old = self._cells[key]
        if old == cells:
            return
        for column, before, after in zip(self._column_specs, old, cells, strict=True):
            if before != after:
                self.update_cell(key, column.key, after, update_width=column.width is None)
        self._cells[key] = cells

    def _rebuild(self, rows: Sequence[tuple[str, tuple[Cell, ...]]]) -> None:
        """Re-add every row (the order changed), keeping the cursor on its row.

        A cursor on the first row stays on the first row, so a newest-first list
        keeps showing the newest entry; elsewhere the cursor follows its row.
        """
        cursor_key = self._cursor_key()
        follow_top = self.cursor_row <= 0
        scroll_x, scroll_y = self.scroll_x, self.scroll_y
        self.clear()
        self._cells = {}
        for key, cells in rows:
            self.add_row(*cells, key=key)
            self._cells[key] = cells
        self._keys = [key for key, _ in rows]
        if not follow_top and cursor_key in self._cells:
            self.move_cursor(row=self.get_row_index(cursor_key), scroll=False)
        self.call_after_refresh(self.scroll_to, scroll_x, scroll_y, animate=False)

    def _cursor_key(self) -> str | None:
        if not self._keys or not 0 <= self.cursor_row < len(self._keys):
            return None
        row_key: RowKey = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return row_key.value


def _verbatim(cells: Sequence[Cell]) -> tuple[Cell, ...]:
    return tuple(Text(cell) if isinstance(cell, str) else cell for cell in cells)
