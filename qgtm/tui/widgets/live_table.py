"""A DataTable that follows a changing list of keyed rows without flicker.

Rows are identified by key. When the keys are unchanged, only cells whose value
changed are updated in place; rows are added or removed only when the set of keys
changes, and the cursor stays on the row it was on.

A table too narrow for all its columns switches to its narrow form: columns marked
`when="wide"` leave, those marked `when="narrow"` (e.g. an abbreviated id) come in, so
the columns a user needs stay whole at 80 columns. Exports keep every column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Self

from rich.console import RenderableType
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.events import Resize
from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

Cell = RenderableType
Row = tuple[str, Sequence[Cell]]
"""A row key and its cells, one per column in column order."""

CELL_CACHE_SIZE = 4096
"""Rendered cells kept across updates (a 200x60 screen shows well under 1,000)."""


@dataclass(frozen=True, slots=True)
class Column:
    """One table column: key, header label, content width (None: fit content), alignment,
    the name an export gives it (None: the key; a unit suffix is added from the cells,
    see `qgtm.tui.formatting.Datum`), and `when` it is shown: always, only while the
    table is wide enough for all its "always" and "wide" columns, or only while not."""

    key: str
    label: str
    width: int | None = None
    align: Literal["left", "right"] = "left"
    export: str | None = None
    when: Literal["always", "wide", "narrow"] = "always"


class LiveTable(DataTable):
    """A row-cursor table updated from snapshots through `sync(rows)`."""

    _quiet_layout = False  # read by refresh(), which DataTable calls during __init__

    DEFAULT_CSS = """
    LiveTable {
        height: 1fr;
    }
    """

    def __init__(self, columns: Sequence[Column], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._all_specs = tuple(columns)
        self.narrow = False
        """True while the table shows its narrow form (see Column.when)."""
        self._column_specs = self._specs_for(narrow=False)
        self._shown_index = [self._all_specs.index(spec) for spec in self._column_specs]
        self._keys: list[str] = []
        self._cells: dict[str, tuple[Cell, ...]] = {}
        """Shown cells of each row (the shown columns only)."""
        self._full: dict[str, tuple[Cell, ...]] = {}
        """Every cell of each shown row, one per column of `all_column_specs`."""
        self._source: list[tuple[str, tuple[Cell, ...]]] = []
        self.sort_index: int | None = None
        """Column the rows are sorted by (None: the order they arrive in)."""
        self.sort_descending = False
        self.filter_text = ""
        """Rows are shown only if some cell contains this text (case-insensitive)."""
        self._cell_lines: LRUCache[tuple[object, ...], tuple[Cell, list[list]]] = LRUCache(
            CELL_CACHE_SIZE
        )

    @property
    def column_specs(self) -> tuple[Column, ...]:
        """The columns shown, in display order."""
        return self._column_specs

    @property
    def all_column_specs(self) -> tuple[Column, ...]:
        """Every column, shown or not (what `sync` rows and exports hold)."""
        return self._all_specs

    def visible_rows(self) -> list[tuple[str, tuple[str, ...]]]:
        """The rows as shown (filtered and sorted), each shown cell as plain text."""
        return [(key, tuple(_plain(c) for c in self._cells[key])) for key in self._keys]

    def visible_cells(self) -> list[tuple[Cell, ...]]:
        """The rows as shown (filtered and sorted), every column's cell as given to `sync`."""
        return [self._full[key] for key in self._keys]

    def _specs_for(self, *, narrow: bool) -> tuple[Column, ...]:
        hidden = "wide" if narrow else "narrow"
        return tuple(spec for spec in self._all_specs if spec.when != hidden)

    def wide_width(self) -> int:
        """Columns needed for the wide form: its columns' widths (a fit-content column
        counts its label), cell padding, and the vertical scrollbar."""
        specs = self._specs_for(narrow=False)
        return 1 + sum((s.width or len(s.label)) + 2 * self.cell_padding for s in specs)

    def on_resize(self, event: Resize) -> None:
        """Switch to the narrow form when the wide one does not fit, and back."""
        if any(spec.when != "always" for spec in self._all_specs):
            self.set_narrow(event.size.width < self.wide_width())

    def set_narrow(self, narrow: bool) -> None:
        """Show the narrow (or wide) form's columns; the rows are redrawn, unsorted."""
        if narrow == self.narrow:
            return
        self.narrow = narrow
        self._column_specs = self._specs_for(narrow=narrow)
        self._shown_index = [self._all_specs.index(spec) for spec in self._column_specs]
        self.sort_index = None
        self.clear(columns=True)
        self._keys, self._cells, self._full = [], {}, {}
        self._cell_lines.clear()
        self._add_columns()
        self._redisplay()

    def repaint(self) -> None:
        """Forget what is drawn so the next `sync` redraws every cell."""
        self._cell_lines.clear()
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
            index = self._shown_index[self.sort_index]
            rows = sorted(rows, key=lambda r: _sort_key(r[1][index]), reverse=self.sort_descending)
        return list(rows)

    def _redisplay(self) -> None:
        self._show(self._view())

    def on_mount(self) -> None:
        """Add the columns; headers of right-aligned columns are right-aligned too."""
        self._add_columns()

    def _add_columns(self) -> None:
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
        """Update changed cells, remove and add rows by key, then reorder if needed.

        Nothing is cleared and re-added: a newest-first list that gains a row on top
        adds one row and moves the others (no full rebuild, no relayout of the screen).
        A cursor on the first row stays on the first row, so a newest-first list keeps
        showing the newest entry; elsewhere the cursor follows its row.
        """
        self._full = dict(verbatim)
        index = self._shown_index
        if len(index) != len(self._all_specs):
            verbatim = [(key, tuple(cells[i] for i in index)) for key, cells in verbatim]
        wanted = [key for key, _ in verbatim]
        if wanted == self._keys:
            for key, cells in verbatim:
                self._update_row(key, cells)
            return
        cursor_key = self._cursor_key()
        follow_top = self.cursor_row <= 0
        wanted_set = set(wanted)
        for key in self._keys:
            if key not in wanted_set:
                self._remove_quietly(key)
                del self._cells[key]
        order = [key for key in self._keys if key in wanted_set]
        for key, cells in verbatim:
            if key in self._cells:
                self._update_row(key, cells)
            else:
                self.add_row(*cells, key=key)
                self._cells[key] = cells
                order.append(key)
        self._keys = wanted
        if order != wanted and not self._reorder(wanted):
            self._rebuild(verbatim, cursor_key, follow_top)
            return
        if not follow_top and cursor_key in self._cells:
            index = wanted.index(cursor_key)
            if index != self.cursor_row:
                self.move_cursor(row=index, scroll=False)

    def _remove_quietly(self, key: str) -> None:
        """Remove a row without DataTable's relayout of the whole screen.

        The table's own size comes from its container, not its rows; the scrollable
        height is recomputed on idle and relays out only if it really changed (a row
        that leaves as another arrives, as in a capped newest-first list, costs none).
        """
        self._quiet_layout = True
        try:
            self.remove_row(key)
        finally:
            self._quiet_layout = False
        self._require_update_dimensions = True
        self.check_idle()

    def refresh(
        self,
        *regions: Region,
        repaint: bool = True,
        layout: bool = False,
        recompose: bool = False,
    ) -> Self:
        """DataTable's refresh, without the layout request while a row is removed."""
        if self._quiet_layout:
            layout = False
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def _reorder(self, wanted: list[str]) -> bool:
        """Put the rows in `wanted` order in place (DataTable.sort on each row's first
        cell, which is a distinct object per row); False if that cannot be done."""
        if not self._column_specs:
            return False
        position = {id(self._cells[key][0]): index for index, key in enumerate(wanted)}
        if len(position) != len(wanted):
            return False  # two rows share a first-cell object: rebuild instead
        self.sort(self._column_specs[0].key, key=lambda cell: position[id(cell)])
        return True

    def _update_row(self, key: str, cells: tuple[Cell, ...]) -> None:
        old = self._cells[key]
        if old == cells:
            return
        shown = []
        for column, before, after in zip(self._column_specs, old, cells, strict=True):
            if before != after:
                self.update_cell(key, column.key, after, update_width=column.width is None)
                shown.append(after)
            else:
                shown.append(before)  # the table keeps the old, equal object
        self._cells[key] = tuple(shown)

    def _rebuild(
        self, rows: Sequence[tuple[str, tuple[Cell, ...]]], cursor_key: str | None, follow_top: bool
    ) -> None:
        """Re-add every row, keeping the cursor on its row (fallback for `_reorder`)."""
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

    def notify_style_update(self) -> None:
        """A theme or focus change restyles every cell: drop the rendered ones."""
        self._cell_lines.clear()
        super().notify_style_update()

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list]:
        """Render a data cell once per value, not once per table update.

        DataTable keys its cell cache on a table-wide update counter, so changing one
        cell re-renders every visible cell on the next frame; during a fast replay that
        was most of the UI thread's time. Here a data cell is cached on the identity of
        its value (every change stores a new object) plus everything else that shapes
        it; header cells go through DataTable's own cache.
        """
        if row_index < 0 or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row_key = self._row_locations.get_key(row_index)
        column_key = self._column_locations.get_key(column_index)
        row = self._data.get(row_key) if row_key is not None else None
        if row is None or column_key not in row:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        value = row[column_key]
        key = (
            row_index,
            column_index,
            id(value),
            base_style,
            width,
            cursor,
            hover,
            self.show_cursor,
            self._show_hover_cursor,
            self._pseudo_class_state,
        )
        cached = self._cell_lines.get(key)
        if cached is not None and cached[0] is value:
            return cached[1]
        lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        self._cell_lines[key] = (value, lines)
        return lines

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
