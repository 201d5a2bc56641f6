"""What keeps the terminal's key path short during a fast replay, and the key footer.

The latency itself is measured in bench/key_latency.py; these tests pin the behaviour
that the benchmark depends on: tables update in place, the chart redraws at most once
per interval, the banner and status line need no relayout, engine threads are niced,
the start-up heap is frozen, and the footer fits the screen.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import os
import sys
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
from textual.app import App, ComposeResult

import qgtm.tui.latency as latency
from qgtm.core.enums import KillTier
from qgtm.engine.live.inprocess import InProcessClient, lower_thread_priority
from qgtm.tui.app import SCREEN_SLOTS, QGTMApp
from qgtm.tui.formatting import price
from qgtm.tui.screens import monitor as monitor_module
from qgtm.tui.screens.monitor import MonitorScreen, status_line
from qgtm.tui.screens.regime import regime_text
from qgtm.tui.widgets import equity_chart as chart_module
from qgtm.tui.widgets.banner import Banner
from qgtm.tui.widgets.equity_chart import EquityChart, thinned
from qgtm.tui.widgets.key_footer import MORE, FooterItem, KeyFooter, fit
from qgtm.tui.widgets.live_table import Column, LiveTable
from tests.tui.conftest import RecordingClient, make_engine
from tests.tui.widgets.test_banner import SNAPSHOT

# --- tables -----------------------------------------------------------------------

COLUMNS = (Column("name", "Name", 6), Column("value", "Value", 8, "right"))


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LiveTable(COLUMNS)


def _rows(*keys: str) -> list[tuple[str, tuple[str, str]]]:
    return [(key, (key, f"v{key}")) for key in keys]


async def test_a_capped_newest_first_list_moves_rows_in_place_without_clearing() -> None:
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(LiveTable)
        table.sync(_rows("c", "b", "a"))
        await pilot.pause()
        clears: list[int] = []
        table.clear = lambda *a, **k: clears.append(1)  # type: ignore[method-assign]
        table.sync(_rows("d", "c", "b"))  # one new on top, the oldest drops off
        await pilot.pause()
        assert clears == []
        assert table.row_keys == ["d", "c", "b"]
        assert [table.get_row_at(i)[0].plain for i in range(3)] == ["d", "c", "b"]


async def test_an_unchanged_cell_is_not_rendered_again_when_another_cell_changes() -> None:
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(LiveTable)
        table.sync(_rows("a", "b"))
        await pilot.pause()
        style = table.rich_style
        before = table._render_cell(1, 0, style, 8)
        table.sync([("a", ("a", "changed")), ("b", ("b", "vb"))])
        await pilot.pause()
        assert table._render_cell(1, 0, style, 8) is before  # cached: same value, same row
        assert table._render_cell(0, 1, style, 10) is not table._render_cell(1, 1, style, 10)


# --- chart ------------------------------------------------------------------------


def test_a_long_curve_is_thinned_to_what_the_plot_width_shows() -> None:
    indices = thinned(4_000, 40)
    assert len(indices) <= 80
    assert indices[0] == 0 and indices[-1] == 3_999
    assert thinned(50, 40) == list(range(50))


class ChartApp(App[None]):
    def compose(self) -> ComposeResult:
        yield EquityChart()


def _curve(n: int) -> tuple[tuple[date, float], ...]:
    start = date(2020, 1, 1)
    return tuple((start + timedelta(days=i), 1_000_000.0 + i) for i in range(n))


async def test_the_chart_redraws_at_most_once_per_interval_and_ends_on_the_newest_curve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chart_module, "CHART_INTERVAL", 0.3)
    app = ChartApp()
    async with app.run_test(size=(60, 12)) as pilot:
        chart = app.query_one(EquityChart)
        chart.show_curve(_curve(10))  # first curve: drawn at once
        first = chart._generation
        for n in range(11, 20):  # a burst of new sessions within the interval
            chart.show_curve(_curve(n))
        assert chart._generation == first
        await pilot.pause(0.5)
        assert chart._generation == first + 1  # one redraw, after the interval
        assert len(chart._curve) == 19


# --- banner and status line -----------------------------------------------------------


class BannerApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Banner()


async def test_the_narrow_banner_fits_80_columns_with_long_values() -> None:
    worst = dataclasses.replace(
        SNAPSHOT,
        regime="mean_reverting",
        speed=1 / 30,
        kill_tier=KillTier.THROTTLE,
        equity=12_345_678.0,
        daily_pnl=-123_456.78,
    )
    app = BannerApp()
    async with app.run_test(size=(80, 3)) as pilot:
        app.query_one(Banner).show(worst)
        await pilot.pause()
        labels = app.query_one(Banner).query("Label")
        shown = [label for label in labels if label.display]
        assert max(label.region.right for label in shown) <= 80
        assert str(app.query_one("#regime").content) == "MEAN-REV"
        assert str(app.query_one("#run-state").content) == "RUN 0.0333"


def test_the_status_line_leaves_the_regime_to_the_banner_and_shows_engine_health() -> None:
    running = dataclasses.replace(SNAPSHOT, regime="crisis", running=True, speed=1.0)
    line = status_line(running, "ok", 0.4).plain
    assert "REGIME" not in line and "crisis" not in line.lower()
    assert line.startswith("ENGINE ok  STEP 0.4s ago  SESSIONS 3")
    assert "RECON —" in line
    paused = dataclasses.replace(running, running=False)
    assert "STEP paused" in status_line(paused, "ok", 99.0).plain


def test_a_running_engine_without_steps_for_too_long_reads_stalled() -> None:
    running = dataclasses.replace(SNAPSHOT, running=True, speed=1.0)
    assert "STEP STALLED 45s" in status_line(running, "ok", 45.0).plain
    slow = dataclasses.replace(running, speed=1 / 30)  # one step every 30 s is normal
    assert "STALLED" not in status_line(slow, "ok", 45.0).plain
    assert status_line(running, "FAILED: boom", 1.0).plain.startswith("ENGINE FAILED: boom")


# --- engine task, threads, heap ----------------------------------------------------------


class _FailingEngine:
    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def run(self) -> int:
        await self.release.wait()
        raise RuntimeError("disk full")


async def test_task_health_follows_the_engine_task() -> None:
    engine = _FailingEngine()
    client = InProcessClient(engine)  # type: ignore[arg-type]
    assert client.task_health() == "stopped"
    await client.start()
    assert client.task_health() == "ok"
    engine.release.set()
    await asyncio.sleep(0.05)
    assert client.task_health() == "FAILED: disk full"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux")
def test_engine_threads_run_at_a_lower_priority_than_the_terminal() -> None:
    seen: list[int] = []

    def worker() -> None:
        lower_thread_priority(5)
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen == [min(19, own + 5)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own


def test_the_start_up_heap_is_frozen_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(latency, "FREEZE_AT_START", True)
    try:
        frozen = latency.freeze_startup_heap()
        assert frozen > 0 and gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    monkeypatch.setattr(latency, "FREEZE_AT_START", False)
    assert latency.freeze_startup_heap() == 0


# --- footer -----------------------------------------------------------------------------


def test_fit_keeps_the_leading_keys_and_marks_what_was_left_out() -> None:
    items = [FooterItem(k, k, label, True) for k, label in [("a", "Alpha"), ("b", "Beta")]]
    shown, clipped = fit(items, 80)
    assert shown == items and not clipped
    shown, clipped = fit(items, len(" a Alpha") + 3)  # room for the first and the "…"
    assert shown == items[:1] and clipped


def _footer(app: QGTMApp) -> KeyFooter:
    return app.screen.query_one(KeyFooter)


@pytest.mark.parametrize("size", [(80, 24), (200, 60)], ids=["80x24", "200x60"])
async def test_every_screen_shows_its_keys_first_and_the_footer_fits(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    engine = make_engine(tmp_path, running=False)
    app = QGTMApp(RecordingClient(engine), theme_file=tmp_path / "theme")
    own_first = {"risk": "r Request reset", "recon": "r Reconcile now", "data": "r Refresh data"}
    async with app.run_test(size=size) as pilot:
        for slot in SCREEN_SLOTS:
            if not slot.keys:
                continue
            await app.action_show_screen(slot.mode)
            await pilot.pause(0.1)
            footer = _footer(app)
            footer.refresh_keys()
            line = footer.plain
            assert len(line) <= size[0], (slot.mode, line)
            assert "? Help" in line and ": Cmd" in line, (slot.mode, line)
            if slot.mode in own_first:
                assert line.startswith(" " + own_first[slot.mode]), (slot.mode, line)
            if size[0] >= 200:
                assert MORE not in line and "q Quit" in line, (slot.mode, line)
    engine.close()


async def test_clicking_a_footer_key_presses_it(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, running=False)
    app = QGTMApp(RecordingClient(engine), theme_file=tmp_path / "theme")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        footer = _footer(app)
        start = footer.plain.index("? Help")
        await pilot.click(KeyFooter, offset=(start, 0))
        await pilot.pause()
        assert app.current_mode == "help"
    engine.close()


async def test_the_app_notes_when_it_last_saw_a_new_session(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, running=False)
    app = QGTMApp(RecordingClient(engine), theme_file=tmp_path / "theme")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        first = app.step_seen_at
        assert first is not None
        app.poll_snapshot()
        assert app.step_seen_at == first  # nothing new: the heartbeat does not move
        await app.client.advance(1)
        app.poll_snapshot()
        assert app.step_seen_at is not None and app.step_seen_at > first
    engine.close()


async def test_a_fast_replay_syncs_one_big_table_per_render_then_all_when_it_settles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(monitor_module, "SETTLE_S", 0.3)
    engine = make_engine(tmp_path, running=False)
    app = QGTMApp(RecordingClient(engine), theme_file=tmp_path / "theme")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, MonitorScreen)

        def keys(panel: str) -> list[str]:
            return screen.query_one(f"#{panel} LiveTable", LiveTable).row_keys

        assert keys("positions") == [] and keys("orders") == []
        # the test feeds the screen itself: the app's own poll, which would render the
        # advanced engine in full whenever it ticks during the (load-dependent) advance,
        # is switched off so the outcome does not depend on the machine's speed
        monkeypatch.setattr(app, "poll_snapshot", lambda: None)
        await app.client.advance(5)
        fast = dataclasses.replace(engine.snapshot(), running=True, speed=0.0)
        assert fast.positions and fast.recent_orders
        screen._turn = 0
        screen.show(fast)  # watchlist's turn: positions and orders wait
        assert keys("positions") == [] and keys("orders") == []
        screen.show(fast)  # positions' turn
        assert keys("positions") == [p.symbol for p in fast.positions]
        assert keys("orders") == []
        await pilot.pause(0.6)  # quiet for SETTLE_S: every table catches up
        assert keys("orders") == [o.client_order_id for o in fast.recent_orders]
        await app.client.advance(1)
        slow = dataclasses.replace(engine.snapshot(), running=True, speed=1.0)
        quote = slow.watchlist[0]
        screen._turn = 1  # it would be the positions' turn in a fast replay
        screen.show(slow)  # one session a second: every table at once
        watch = dict(screen.query_one("#watchlist LiveTable", LiveTable).visible_rows())
        assert watch[quote.symbol][2] == price(quote.last).plain
    engine.close()


def test_the_regime_screen_says_when_today_calls_for_a_regime_not_yet_confirmed() -> None:
    held = dataclasses.replace(SNAPSHOT, regime="trending", regime_raw="crisis")
    lines = regime_text(held).splitlines()
    assert lines[0].startswith("Current regime: trending (")
    assert lines[1].startswith("Today's indicators call crisis: a new regime takes over once")
    agreed = dataclasses.replace(SNAPSHOT, regime="trending", regime_raw="trending")
    assert len(regime_text(agreed).splitlines()) == 1
