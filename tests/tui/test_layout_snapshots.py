"""Every screen at 80x24 (SSH on a small terminal) and 160x48 (a large one): screenshots
(update with --snapshot-update) and plain checks that the columns a user needs are whole.

The world is fixed: seed 11 (tests/tui/conftest.py SHORT_DEMO), a data dir built by the
test, the engine paused after ten sessions, so every clock on screen is the simulated
one (2009-01-27) and nothing shows wall-clock time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets.data_table import ColumnKey

from qgtm.tui.app import QGTMApp
from qgtm.tui.widgets.equity_chart import EquityChart
from qgtm.tui.widgets.live_table import LiveTable
from tests.tui.conftest import RecordingClient, make_engine

SIZES = [(80, 24), (160, 48)]
SCREEN_KEYS = {
    "monitor": [],
    "orders": ["2"],
    "audit": ["3"],
    "risk": ["4"],
    "research": ["5"],
    "strategies": ["6"],
    "recon": ["7"],
    "data": ["8"],
    "portfolio": ["9"],
    "signals": ["0"],
    "help": ["question_mark"],
    "security": ["colon", "G", "L", "D", "enter"],
    "regime": ["colon", *"REGIME", "enter"],
}
KEY_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    # screen -> table panel id -> the columns a user needs there, at every size
    "monitor": {"watchlist": ("symbol", "last", "change", "volume")},
    "orders": {
        "blotter": ("symbol", "side", "qty", "status", "algo", "fill"),
        "tca-orders": ("algo", "filled", "arrival", "vwap", "is"),
    },
    "audit": {"audit": ("seq", "time", "event", "actor")},
    "strategies": {"strategy-list": ("name", "status")},
    "recon": {"recon": ("kind", "symbol", "severity", "broker", "local", "action")},
    "data": {"datasets": ("dataset", "rows", "last", "age", "status", "critical", "warnings")},
    "portfolio": {
        "portfolio-positions": ("symbol", "qty", "avg", "last", "value", "upnl", "weight"),
        "sectors": ("sector", "positions", "value", "weight", "upnl"),
    },
    "signals": {"signals": ("as_of", "strategy", "symbol", "side", "weight", "confidence")},
    "help": {"help-keys": ("keys", "what", "id")},
    "security": {"security-stats": ("stat", "value")},
    "research": {"research-stats": ("stat", "a", "b")},
}
ROWS_CHECKED = 5


def _after_ten_sessions(keys: list[str]):
    async def run_before(pilot: Pilot) -> None:
        app = pilot.app
        assert isinstance(app, QGTMApp)
        await app.client.advance(10)
        app.poll_snapshot()
        await pilot.pause()
        # The Monitor reloads signals at most once a second and redraws the equity chart
        # at most every CHART_INTERVAL; ten sessions run well inside that, so the tenth
        # session's signals and curve are deferred. Wait for both: the picture then shows
        # them whatever the machine's speed.
        for _ in range(120):
            charts = app.screen.query(EquityChart)
            deferred = getattr(app.screen, "_signals_timer_set", False) or any(
                chart.redraw_pending for chart in charts
            )
            if not deferred:
                break
            await pilot.pause(0.05)
        await app.workers.wait_for_complete()
        if keys:
            await pilot.press(*keys)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


def _app(tmp_path: Path) -> QGTMApp:
    book = tmp_path / "book"
    return QGTMApp(
        RecordingClient(make_engine(book, running=False)),
        data_dir=book,
        theme_file=tmp_path / "theme",
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", sorted(SCREEN_KEYS))
def test_screen_layout(snap_compare, tmp_path, screen: str, size: tuple[int, int]) -> None:
    assert snap_compare(
        _app(tmp_path), terminal_size=size, run_before=_after_ten_sessions(SCREEN_KEYS[screen])
    )


def _screen_lines(app: QGTMApp) -> list[str]:
    """The screen as drawn, one string per terminal row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def _plain(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _drawn_cells(app: QGTMApp, table: LiveTable, column: str) -> tuple[str, list[str]]:
    """The header and the first rows' text drawn in `column`'s cells, read back from the
    screen: a column cut at the table's edge reads back cut."""
    lines = _screen_lines(app)
    keys = list(table.columns)
    index = keys.index(ColumnKey(column))
    x = table.content_region.x + sum(table.columns[k].get_render_width(table) for k in keys[:index])
    width = table.columns[ColumnKey(column)].get_render_width(table)
    y = table.content_region.y
    header = lines[y][x : x + width].strip()
    rows = [
        lines[y + table.header_height + r][x : x + width].strip()
        for r in range(min(ROWS_CHECKED, table.row_count, table.content_size.height - 1))
    ]
    return header, rows


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", sorted(KEY_COLUMNS))
async def test_key_columns_are_drawn_whole(tmp_path, screen: str, size: tuple[int, int]) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await _after_ten_sessions(SCREEN_KEYS[screen])(pilot)
        for panel_id, columns in KEY_COLUMNS[screen].items():
            table = app.screen.query_one(f"#{panel_id} LiveTable", LiveTable)
            table.scroll_visible(animate=False)  # a panel below the fold of a small screen
            await pilot.pause()
            assert table.scroll_x == 0
            shown = {spec.key: spec for spec in table.column_specs}
            visible = table.visible_rows()
            for column in columns:
                assert column in shown, f"{screen} {panel_id}: {column} is not shown"
                spec = shown[column]
                header, drawn = _drawn_cells(app, table, column)
                assert header == spec.label, f"{screen} {panel_id}: header {header!r}"
                position = table.column_specs.index(spec)
                expected = [cells[position].strip() for _, cells in visible[: len(drawn)]]
                assert drawn == expected, f"{screen} {panel_id} {column}"


async def test_orders_at_80_columns_name_each_order_by_date_symbol_and_slice(tmp_path) -> None:
    """The narrow TCA table leaves out the strategy set's hash, the same on every row."""
    app = _app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _after_ten_sessions(["2"])(pilot)
        table = app.screen.query_one("#tca-orders LiveTable", LiveTable)
        assert table.narrow
        for key, cells in table.visible_rows():
            assert key.split("-", 1)[1] == cells[0]


async def test_the_signal_rationale_is_shown_whole_under_the_table(tmp_path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _after_ten_sessions(["0"])(pilot)
        table = app.screen.query_one("#signals LiveTable", LiveTable)
        table.focus()
        await pilot.press("down")
        await pilot.pause()
        key = table.row_keys[1]
        signal = app.screen._signals[key]
        text = " ".join(
            line.strip("│ ") for line in _screen_lines(app)[-6:] if line.startswith("│")
        )
        assert " ".join(signal.rationale.split()) in " ".join(text.split())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_research_date_hints_are_whole(tmp_path, size: tuple[int, int]) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await _after_ten_sessions(["5"])(pilot)
        screen = "\n".join(_screen_lines(app))
        assert "from YYYY-MM-DD" in screen
        assert "to   YYYY-MM-DD" in screen


async def test_the_audit_detail_is_shown_whole_under_the_table(tmp_path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await _after_ten_sessions(["3"])(pilot)
        table = app.screen.query_one("#audit LiveTable", LiveTable)
        table.focus()
        records = [app.screen._records[key] for key in table.row_keys]
        # a detail longer than its column at 80, short enough for the box whole
        row = next(i for i, r in enumerate(records) if 80 < len(r.detail) < 300)
        await pilot.press(*["down"] * row)
        await pilot.pause()
        record = records[row]
        text = " ".join(
            line.strip("│ ") for line in _screen_lines(app)[-8:] if line.startswith("│")
        )
        assert " ".join(record.detail.split()) in " ".join(text.split())
