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
from textual.widgets.data_table import ColumnKey, RowKey

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
        self._source: list[tuple[str, tuple[Cell, ...]]] = []
        self.sort_index: int | None = None
        """Column the rows are sorted by (None: the order they arrive in)."""
        self.sort_descending = False
        self.filter_text = ""
        """Rows are shown only if some cell contains this text (case-insensitive)."""

    @property
    def column_specs(self) -> tuple[Column, ...]:
        """The columns, in display order."""
        return self._column_specs

    def visible_rows(self) -> list[tuple[str, tuple[str, ...]]]:
        """The rows as shown (filtered and sorted), each cell as plain text."""
        return [(key, tuple(_plain(c) for c in self._cells[key])) for key in self._keys]

    def repaint(self) -> None:
        """Forget what is drawn so the next `sync` redraws every cell."""
        self.clear()
        self._keys = []
        self._cells = {}

    def cycle_sort(self) -> None:
        """Sort by the next column (ascending); after the last column, back to arrival order."""
        count = len(self._column_specs)
        if self.sort_index is None:
            self.sort_index, self.sort_descending = 0, False
        elif self.sort_index + 1 < count:
            self.sort_index += 1
        else:
            self.sort_index = None
        self._relabel()
        self._redisplay()

    def reverse_sort(self) -> None:
        """Flip the sort direction (sorting by the first column if unsorted)."""
        if self.sort_index is None:
            self.sort_index = 0
        else:
            self.sort_descending = not self.sort_descending
        self._relabel()
        self._redisplay()

    def set_filter(self, text: str) -> None:
        """Show only rows with a cell containing `text`."""
        self.filter_text = text
        self._redisplay()

    def _relabel(self) -> None:
        for index, spec in enumerate(self._column_specs):
            marker = ""
            if index == self.sort_index:
                marker = " ▼" if self.sort_descending else " ▲"
            column = self.columns.get(ColumnKey(spec.key))
            if column is not None:
                column.label = Text(spec.label + marker, justify=spec.align)
        self._require_update_dimensions = True
        self.refresh()

    def _view(self) -> list[tuple[str, tuple[Cell, ...]]]:
        rows = self._source
        if self.filter_text:
            needle = self.filter_text.lower()
            rows = [r for r in rows if any(needle in _plain(c).lower() for c in r[1])]
        if self.sort_index is not None:
            index = self.sort_index
            rows = sorted(rows, key=lambda r: _sort_key(r[1][index]), reverse=self.sort_descending)
        return list(rows)

    def _redisplay(self) -> None:
        self._show(self._view())

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
        self._source = [(key, _verbatim(cells)) for key, cells in rows]
        self._show(self._view())

    def _show(self, verbatim: list[tuple[str, tuple[Cell, ...]]]) -> None:
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


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _sort_key(cell: Cell) -> tuple[int, float, str]:
    """Numbers (with separators, signs, %) sort numerically before text; text by letters."""
    text = _plain(cell).strip()
    number = text.replace(",", "").replace("%", "").replace("+", "")
    try:
        return 0, float(number), ""
    except ValueError:
        return 1, 0.0, text.lower()
