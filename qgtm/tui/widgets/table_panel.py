"""A titled box around a LiveTable: sort, type-to-filter, export, honest empty state.

Keys (ids in qgtm.tui.keymap): `s` sorts by the next column, `S` flips the direction,
`/` opens the filter line (Enter keeps the filter, Escape clears it), `x` / `X` export
the rows as shown to CSV / Parquet under the data directory's `exports/`, as typed data
(numbers, dates, fractions named `*_frac`), not as the text on screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Vertical
from textual.css.query import NoMatches
from textual.events import Key
from textual.widgets import Input, Static

from qgtm.tui.formatting import DASH, Datum
from qgtm.tui.keymap import bind
from qgtm.tui.widgets.live_table import Cell, Column, LiveTable, Row

if TYPE_CHECKING:
    import polars as pl


def export_frame(table: LiveTable) -> pl.DataFrame:
    """`table`'s visible rows as typed data: numbers as numbers, dates as dates, a dash as
    null; a column of fractions or basis points says so in its name (`change_frac`,
    `arrival_cost_bps`). A column that mixes kinds (a statistics table) stays text."""
    import polars as pl  # only on export: attaching a terminal must not load polars

    rows = table.visible_cells()
    series = [
        _column_series(spec, [row[index] for row in rows])
        for index, spec in enumerate(table.all_column_specs)
    ]
    return pl.DataFrame(series)


def _column_series(spec: Column, cells: list[Cell]) -> pl.Series:
    import polars as pl

    units = {cell.unit for cell in cells if isinstance(cell, Datum) and cell.unit}
    name = spec.export or spec.key
    if len(units) == 1:
        unit = units.pop()
        name = name if name.endswith(f"_{unit}") else f"{name}_{unit}"
    values = [_value(cell) for cell in cells]
    present = [v for v in values if v is not None]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in present)
    if numbers and any(isinstance(v, float) for v in present):
        values = [None if v is None else float(v) for v in values]  # 3 and 2.5: all floats
    try:
        column = pl.Series(name, values)
    except (TypeError, pl.exceptions.PolarsError):  # mixed kinds: keep the text as shown
        return pl.Series(name, [_plain(cell) for cell in cells], dtype=pl.String)
    return column.cast(pl.String) if column.dtype == pl.Null else column


def _value(cell: Cell) -> object:
    if isinstance(cell, Datum):
        return cell.value
    text = _plain(cell)
    return None if text.strip() in ("", DASH) else text


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def export_table(table: LiveTable, directory: Path, stem: str, fmt: str) -> tuple[Path, int]:
    """Write `table`'s visible rows, typed (`export_frame`), to `directory/stem-<time>.<fmt>`."""
    frame = export_frame(table)
    rows = frame.height
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}-{datetime.now():%Y%m%d-%H%M%S-%f}.{fmt}"
    if fmt == "csv":
        frame.write_csv(path)
    elif fmt == "parquet":
        frame.write_parquet(path)
    else:
        raise ValueError(f"unknown export format {fmt!r} (csv or parquet)")
    return path, rows


class TablePanel(Vertical):
    """A bordered panel: title, filter line, table, and an empty-state line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("table.sort", "sort", "Sort"),
        bind("table.reverse", "reverse_sort", "Reverse", show=False),
        bind("table.filter", "filter", "Filter", key_display="/"),
        bind("table.export_csv", "export('csv')", "CSV"),
        bind("table.export_parquet", "export('parquet')", "Parquet", show=False),
    ]

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
        self._title = title
        self._columns = columns
        self._empty_message = empty_message

    def compose(self) -> ComposeResult:
        """Filter line (hidden until `/`), the table, the empty-state line."""
        # Disabled (so never focused by Tab) until `/` opens it.
        yield Input(placeholder="filter rows…", classes="table-filter", disabled=True)
        yield LiveTable(self._columns)
        yield Static(self._empty_message, classes="empty-state", markup=False)

    @property
    def table(self) -> LiveTable:
        """The panel's table."""
        return self.query_one(LiveTable)

    def sync(self, rows: Sequence[Row]) -> None:
        """Show `rows`; the empty-state line appears while there are none."""
        try:
            table = self.table
        except NoMatches:
            return  # a worker's answer arrived while the screen was being torn down
        table.sync(rows)
        self.set_class(not rows, "-empty")

    def set_empty_message(self, message: str) -> None:
        """Change what the panel says while it has no rows (when the reason changes)."""
        if message == self._empty_message:
            return
        self._empty_message = message
        try:
            self.query_one(".empty-state", Static).update(message)
        except NoMatches:
            return

    def action_sort(self) -> None:
        """Sort by the next column."""
        self.table.cycle_sort()

    def action_reverse_sort(self) -> None:
        """Flip the sort direction."""
        self.table.reverse_sort()

    def action_filter(self) -> None:
        """Open the filter line and put the cursor in it."""
        self.add_class("-filtering")
        filter_input = self.query_one(".table-filter", Input)
        filter_input.disabled = False
        filter_input.focus()

    @on(Input.Changed, ".table-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.table.set_filter(event.value)

    @on(Input.Submitted, ".table-filter")
    def _filter_kept(self) -> None:
        self.set_class(bool(self.table.filter_text), "-filtering")
        self.table.focus()
        self.query_one(".table-filter", Input).disabled = True

    def on_key(self, event: Key) -> None:
        """Escape in the filter line clears the filter and returns to the table."""
        filter_input = self.query_one(".table-filter", Input)
        if event.key != "escape" or not filter_input.has_focus:
            return
        event.stop()
        self.clear_filter()

    def clear_filter(self) -> None:
        """Drop the type-to-filter text and show every row again."""
        filter_input = self.query_one(".table-filter", Input)
        filter_input.value = ""
        self.table.set_filter("")
        self.remove_class("-filtering")
        self.table.focus()
        filter_input.disabled = True

    def action_export(self, fmt: str) -> None:
        """Write the rows as shown to the exports folder and say where."""
        directory = getattr(self.app, "exports_dir", Path.cwd() / "exports")
        stem = (self.id or self._title).lower().replace(" ", "-")
        path, count = export_table(self.table, directory, stem, fmt)
        self.app.notify(f"exported {count} rows to {path}", title="Export")
