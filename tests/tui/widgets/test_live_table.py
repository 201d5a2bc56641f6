"""LiveTable follows keyed rows in place: cursor kept, rows added/removed only on change."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult

from qgtm.tui.widgets.live_table import Column, LiveTable
from qgtm.tui.widgets.table_panel import export_frame

COLUMNS = (Column("name", "Name", 6), Column("value", "Value", 8, "right"))


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LiveTable(COLUMNS)


def rows(*pairs: tuple[str, str]) -> list[tuple[str, tuple[str, str]]]:
    return [(key, (key, value)) for key, value in pairs]


def cursor_key(table: LiveTable) -> str | None:
    return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


async def test_same_keys_update_changed_cells_and_keep_the_cursor() -> None:
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(LiveTable)
        table.sync(rows(("a", "1"), ("b", "2"), ("c", "3")))
        table.move_cursor(row=2)
        await pilot.pause()
        table.sync(rows(("a", "1"), ("b", "20"), ("c", "30")))
        await pilot.pause()
        assert table.cursor_row == 2
        assert table.get_cell("c", "value") == Text("30")
        assert table.row_count == 3


async def test_rows_added_on_top_keep_the_cursor_on_its_row() -> None:
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(LiveTable)
        table.sync(rows(("a", "1"), ("b", "2")))
        table.move_cursor(row=1)
        await pilot.pause()
        table.sync(rows(("new", "0"), ("a", "1"), ("b", "2")))
        await pilot.pause()
        assert table.row_keys == ["new", "a", "b"]
        assert cursor_key(table) == "b"


async def test_cursor_on_the_first_row_stays_on_the_newest_row() -> None:
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(LiveTable)
        table.sync(rows(("a", "1"), ("b", "2")))
        await pilot.pause()
        table.sync(rows(("new", "0"), ("a", "1"), ("b", "2")))
        await pilot.pause()
        assert cursor_key(table) == "new"


async def test_rows_missing_from_the_update_are_removed_and_new_ones_appended() -> None:
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(LiveTable)
        table.sync(rows(("a", "1"), ("b", "2"), ("c", "3")))
        table.sync(rows(("a", "1"), ("c", "3"), ("d", "4")))
        await pilot.pause()
        assert table.row_keys == ["a", "c", "d"]
        assert table.row_count == 3


async def test_engine_text_is_shown_verbatim_not_parsed_as_markup() -> None:
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(LiveTable)
        table.sync([("k", ("[b]x[/b]", "1"))])
        await pilot.pause()
        assert table.get_cell("k", "name").plain == "[b]x[/b]"


FORMS = (
    Column("id", "Order id", 30, when="wide"),
    Column("short", "Order", 8, when="narrow"),
    Column("algo", "Algo", 6),
    Column("cost", "Cost bps", 8, "right"),
)


class FormsApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LiveTable(FORMS)


async def test_a_table_too_narrow_for_its_wide_columns_shows_its_narrow_form() -> None:
    """Wide form: 30+6+8 plus padding and scrollbar = 51 columns. Narrower, the long id
    gives way to the short one; wider again, it comes back. Sorting follows the columns
    shown, and the export frame keeps every column."""
    app = FormsApp()
    async with app.run_test(size=(80, 10)) as pilot:
        table = app.query_one(LiveTable)
        table.sync(
            [
                ("a", ("set-0101-GLD-0", "0101-GLD", "TWAP", "+3.0")),
                ("b", ("set-0101-BNO-0", "0101-BNO", "MARKET", "-1.0")),
            ]
        )
        await pilot.pause()
        assert not table.narrow
        assert [s.key for s in table.column_specs] == ["id", "algo", "cost"]
        await pilot.resize_terminal(50, 10)
        await pilot.pause()
        assert table.narrow
        assert [s.key for s in table.column_specs] == ["short", "algo", "cost"]
        assert table.visible_rows()[0] == ("a", ("0101-GLD", "TWAP", "+3.0"))
        table.cycle_sort()
        table.cycle_sort()  # by Algo, the second column shown
        assert table.row_keys == ["b", "a"]
        assert [len(cells) for cells in table.visible_cells()] == [4, 4]
        frame = export_frame(table)
        assert frame.columns == ["id", "short", "algo", "cost"]
        await pilot.resize_terminal(80, 10)
        await pilot.pause()
        assert not table.narrow
        assert table.visible_rows()[0][1][0].startswith("set-")
