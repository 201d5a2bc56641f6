from textual.app import App, ComposeResult
from textual.widgets import Static

from qgtm.tui.widgets.live_table import Column, LiveTable
from qgtm.tui.widgets.table_panel import TablePanel

COLUMNS = (Column("symbol", "Symbol", 6),)


class _Host(App[None]):
    def compose(self) -> ComposeResult:
        yield TablePanel("T", COLUMNS, "nothing yet", id="panel")


async def test_rows_show_and_the_empty_state_follows_them():
    app = _Host()
    async with app.run_test() as pilot:
        panel = app.query_one("#panel", TablePanel)
        panel.sync([("GLD", ("GLD",))])
        await pilot.pause()
        assert panel.table.row_keys == ["GLD"] and not panel.has_class("-empty")
        panel.sync([])
        assert panel.has_class("-empty")


async def test_a_late_answer_for_a_panel_being_torn_down_is_dropped_quietly():
    app = _Host()
    async with app.run_test() as pilot:
        panel = app.query_one("#panel", TablePanel)
        await panel.query_one(LiveTable).remove()
        await pilot.pause()
        panel.sync([("GLD", ("GLD",))])  # must not raise NoMatches
        assert panel.has_class("-empty")


async def test_the_empty_state_is_shown_verbatim_not_parsed_as_markup() -> None:
    message = "No signals yet (configure it in [engine] strategies)"

    class _App(App[None]):
        def compose(self) -> ComposeResult:
            yield TablePanel("T", (Column("a", "A", 3),), message)

    app = _App()
    async with app.run_test() as pilot:
        await pilot.pause()
        shown = app.query_one(TablePanel).query_one(".empty-state", Static)
        assert shown.render().plain == message  # "[engine]" was eaten as a style tag
