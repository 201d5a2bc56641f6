"""Research screen from the keyboard: pick, run in the background, chart, compare."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Select
from textual_plotext import PlotextPlot

from qgtm.core.backtest import BacktestError, compact_percent
from qgtm.engine.live.engine import TradingEngine
from qgtm.tui.app import QGTMApp
from qgtm.tui.screens.help import HelpScreen
from qgtm.tui.screens.research import ResearchScreen, parse_params, stat_rows
from qgtm.tui.widgets.command_line import CommandLine
from qgtm.tui.widgets.live_table import LiveTable
from qgtm.tui.widgets.run_picker import RunPicker
from tests.engine.backtest.engines import research_engine
from tests.tui.conftest import RecordingClient

SIZE = (140, 45)


async def _choose(pilot: Pilot, name: str) -> None:
    """Focus the strategy selector, open it, go to the top, arrow down to `name`, take it."""
    screen = pilot.app.screen
    select = screen.query_one("#strategy", Select)
    select.focus()
    await pilot.press("enter")
    await pilot.pause()
    options = [value for _, value in select._options if value is not Select.BLANK]
    await pilot.press("home", *(["down"] * options.index(name)))
    await pilot.press("enter")
    await pilot.pause()
    assert select.value == name


async def _type_window(pilot: Pilot, start: str, end: str) -> None:
    screen = pilot.app.screen
    screen.query_one("#start", Input).focus()
    await pilot.press(*start)
    screen.query_one("#end", Input).focus()
    await pilot.press(*end)


async def _wait_runs(pilot: Pilot, screen: ResearchScreen, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(screen.runs) < count and time.monotonic() < deadline:
        await pilot.pause(0.1)
    assert len(screen.runs) == count, screen.status_text


@asynccontextmanager
async def _on_research(
    engine: TradingEngine, size: tuple[int, int] = SIZE, keymap: dict[str, str] | None = None
) -> AsyncIterator[tuple[Pilot, ResearchScreen]]:
    """The terminal on `engine` (with `keymap` overrides), on the Research screen."""
    app = QGTMApp(RecordingClient(engine), keymap=keymap)
    async with app.run_test(size=size) as pilot:
        await pilot.press("5")
        await pilot.pause(0.2)
        assert isinstance(app.screen, ResearchScreen)
        yield pilot, app.screen


async def test_research_runs_two_backtests_in_background_and_compares_them(
    tmp_path: Path,
) -> None:
    engine = research_engine(tmp_path)
    app = QGTMApp(RecordingClient(engine))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5")
            screen = app.screen
            assert isinstance(screen, ResearchScreen)
            await pilot.pause(0.2)
            await _choose(pilot, "sma_cross")
            await _type_window(pilot, "2009-01-02", "2009-12-31")
            await pilot.press("enter")  # Enter in a date field runs it
            assert screen.pending is not None or screen.runs
            # the UI keeps answering while the job runs: screens switch and come back
            # (function keys: digits would go into the focused date field)
            await pilot.press("f1")
            assert not isinstance(app.screen, ResearchScreen)
            await pilot.press("f5")
            await _wait_runs(pilot, screen, 1)
            first = screen.runs[0]
            assert first["strategy"] == "sma_cross"
            assert first["start"] >= "2009-01-02" and first["end"] <= "2009-12-31"
            await _choose(pilot, "tsmom")
            screen.query_one("#params", Input).focus()
            await pilot.press(*"lookback=84 skip=0")
            screen.query_one("#start", Input).value = "2009-07-01"
            await pilot.press("ctrl+r")
            await _wait_runs(pilot, screen, 2)
            table = screen.query_one("#research-stats LiveTable", LiveTable)
            assert "sharpe" in table.row_keys
            strategy_row = table.get_row("strategy")
            assert [str(c) for c in strategy_row[1:]] == ["tsmom", "sma_cross"]
            assert screen.runs[0]["params"]["lookback"] == 84  # the typed override ran
            assert str(table.get_row("params")[1]).startswith("lookback=84 skip=0 ")
            assert "Done: tsmom" in screen.status_text
            # the runs used [backtest]'s defaults: no impact or borrow, tiers held
            assert "impact 0bp, borrow 0bp/yr, kill reset hold -> " in screen.status_text
            assert Path(screen.runs[0]["artifact"]).exists()
            # the newest run's months, newest year first, each year compounded
            months = screen.query_one("#research-months LiveTable", LiveTable)
            monthly = screen.runs[0]["report"]["monthly_returns"]
            assert months.row_keys == sorted(monthly, reverse=True)
            year = months.row_keys[-1]
            compounded = np.prod([1 + r for r in monthly[year].values()]) - 1
            assert str(months.get_row(year)[-1]) == compact_percent(compounded)
            # both curves on one date axis: runs over different windows line up by date
            await pilot.pause(0.3)
            assert "2009-07" in app.export_screenshot()  # an x-axis date label
            plot = screen.query_one("#equity-plot", PlotextPlot)
            assert plot.plt is not None
    finally:
        engine.close()


async def test_bad_window_shows_the_engines_one_line_reason(tmp_path: Path) -> None:
    engine = research_engine(tmp_path)
    app = QGTMApp(RecordingClient(engine))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5")
            screen = app.screen
            await pilot.pause(0.2)
            await _choose(pilot, "tsmom")
            await _type_window(pilot, "2009-13-01", "")
            await pilot.press("enter")
            await pilot.pause(0.2)
            assert "bad from '2009-13-01'" in screen.status_text
    finally:
        engine.close()


async def test_narrow_terminals_switch_between_stats_and_monthly_tables(tmp_path: Path) -> None:
    """At 140 columns both tables sit side by side; narrower, one at a time (ctrl+t);
    a bad parameter entry is refused in the screen with the entry named."""
    engine = research_engine(tmp_path)
    try:
        async with _on_research(engine, (100, 30)) as (pilot, screen):
            stats = screen.query_one("#research-stats")
            months = screen.query_one("#research-months")
            assert stats.display and not months.display
            await pilot.press("ctrl+t")
            await pilot.pause()
            assert months.display and not stats.display
            await pilot.press("ctrl+t")
            await pilot.pause()
            assert stats.display and not months.display
            await pilot.resize_terminal(*SIZE)
            await pilot.pause(0.2)
            assert stats.display and months.display
            await _choose(pilot, "tsmom")
            screen.query_one("#params", Input).value = "lookback=84 skip"
            await pilot.press("ctrl+r")
            await pilot.pause(0.2)
            assert screen.status_text == (
                "Cannot run: bad parameter 'skip': want NAME=NUMBER or NAME=LOW:HIGH:STEP"
            )
            assert screen.pending is None
    finally:
        engine.close()


async def test_ctrl_o_loads_a_stored_run_for_comparison(tmp_path: Path) -> None:
    """The picker lists the data dir's stored runs; typing narrows it, Enter loads the
    match, which becomes the newest run in the stats, monthly table and charts."""
    from tests.engine.backtest.test_service import _store_two_runs

    engine = research_engine(tmp_path)
    ids = _store_two_runs(engine)
    try:
        async with _on_research(engine) as (pilot, screen):
            app = pilot.app
            await pilot.press("ctrl+o")
            await pilot.pause(0.2)
            picker = app.screen
            assert isinstance(picker, RunPicker)
            options = picker.query_one(OptionList)
            assert options.option_count == 2
            await pilot.press(*ids[0][-6:])  # a piece of the first run's id
            await pilot.pause()
            assert options.option_count == 1
            await pilot.press("enter")
            await pilot.pause(0.3)
            assert app.screen is screen and len(screen.runs) == 1
            assert Path(screen.runs[0]["artifact"]).name == ids[0]
            table = screen.query_one("#research-stats LiveTable", LiveTable)
            assert str(table.get_row("params")[1]).startswith("fast=5 ")
            assert screen.query_one("#research-months LiveTable", LiveTable).row_count > 0
            assert f"Loaded {ids[0]}" in screen.status_text
            await pilot.press("ctrl+o")
            await pilot.pause(0.2)
            await pilot.press("escape")  # closes without loading
            await pilot.pause()
            assert app.screen is screen and len(screen.runs) == 1
    finally:
        engine.close()


async def test_a_range_in_the_parameters_sweeps_it_and_shows_the_sweep_table(
    tmp_path: Path,
) -> None:
    """'fast=20:40:10' sweeps fast (quick decision, vectorised): the best value's run is
    the newest run, with the deflated Sharpe and PBO over the three trials, and the sweep
    table takes the monthly table's place. Two ranges at once are refused."""
    engine = research_engine(tmp_path)
    try:
        async with _on_research(engine) as (pilot, screen):
            await _choose(pilot, "sma_cross")
            screen.query_one("#params", Input).value = "fast=20:40:10 slow=1:2:1"
            await pilot.press("ctrl+r")
            await pilot.pause(0.2)
            assert screen.status_text == "Cannot run: one swept parameter at a time, not 2"
            screen.query_one("#params", Input).value = "fast=20:40:10"
            await pilot.press("ctrl+r")
            await _wait_runs(pilot, screen, 1, timeout=60)
            run = screen.runs[0]
            assert [row["fast"] for row in run["sweep"]] == [20, 30, 40]
            best = max(run["sweep"], key=lambda row: row["sharpe"])
            assert run["params"]["fast"] == best["fast"]
            assert run["config"]["settings"]["decision"] == "signal"
            table = screen.query_one("#research-sweep LiveTable", LiveTable)
            assert table.row_count == 3
            assert screen.query_one("#research-sweep").display
            assert not screen.query_one("#research-months").display
            stats = screen.query_one("#research-stats LiveTable", LiveTable)
            dsr = str(stats.get_row("deflated_sharpe")[1])
            assert 0.0 <= float(dsr) <= 1.0
    finally:
        engine.close()


async def test_research_keys_are_remapped_by_id(tmp_path: Path) -> None:
    """[tui.keymap] "research.stored_runs" = "ctrl+y": ctrl+y opens the stored runs; the
    Help screen's table lists the Research ids with the keys in force."""
    from tests.engine.backtest.test_service import _store_two_runs

    engine = research_engine(tmp_path)
    _store_two_runs(engine)
    try:
        keymap = {"research.stored_runs": "ctrl+y"}
        async with _on_research(engine, keymap=keymap) as (pilot, _screen):
            rows = {row[0]: row[1] for row in pilot.app.binding_table()}
            assert rows["research.stored_runs"] == "ctrl+y"
            assert rows["research.run"] == "ctrl+r"
            await pilot.press("ctrl+y")
            await pilot.pause(0.2)
            assert isinstance(pilot.app.screen, RunPicker)
    finally:
        engine.close()


def test_the_stats_table_names_the_worst_kill_tier_and_its_month() -> None:
    """The 17-column cell holds the worst tier and the month it was entered; a run the
    switch never stopped says so, and a run stored before spells were kept is blank."""

    def run(report: dict) -> dict:
        return {
            "report": report, "validation": {}, "strategy": "tsmom", "params": {},
            "start": "2008-04-07", "end": "2025-12-31", "final_equity": 1.0, "trades": 1,
        }  # fmt: skip

    spells = {
        "WARN": {"sessions": 300, "first": "2011-03-04"},
        "FLATTEN": {"sessions": 224, "first": "2025-02-11"},
    }
    tripped = run({"kill_switch": "FLATTEN from 2025-02-11 (224 sessions)", "kill_spells": spells})
    calm = run({"kill_switch": "not tripped", "kill_spells": {}})
    rows = dict(stat_rows([tripped, calm]))
    assert [str(c) for c in rows["kill_switch"]] == [
        "Kill switch",
        "FLATTEN 2025-02",
        "not tripped",
    ]
    rows = dict(stat_rows([run({})]))
    assert [str(c) for c in rows["kill_switch"]] == ["Kill switch", "", ""]


def test_the_parameters_field_takes_the_clis_cost_and_kill_reset_flags() -> None:
    asked = parse_params("fast=20, --impact 25 --borrow=50 --kill-reset daily slow=40:60:10")
    assert asked.params == {"fast": 20.0} and asked.sweep == "slow=40:60:10"
    assert asked.flags == {"--impact": "25", "--borrow": "50", "--kill-reset": "daily"}
    for text, message in (
        ("--spread 3", "unknown option --spread"),
        ("fast=20 --impact", "--impact needs a value"),
    ):
        with pytest.raises(BacktestError, match=message):
            parse_params(text)


async def test_a_run_takes_its_own_impact_and_kill_reset(tmp_path: Path) -> None:
    """The flags reach the engine's settings for this run only, the status line names
    them, and a bad value is the engine's one-line reason."""
    engine = research_engine(tmp_path)
    try:
        async with _on_research(engine) as (pilot, screen):
            await _choose(pilot, "sma_cross")
            params = screen.query_one("#params", Input)
            params.value = "--kill-reset weekly"
            await pilot.press("ctrl+r")
            await pilot.pause(0.2)
            assert screen.status_text == "Cannot run: bad --kill-reset 'weekly': want hold or daily"
            params.value = "--impact 25 --kill-reset daily"
            await pilot.press("ctrl+r")
            await _wait_runs(pilot, screen, 1, timeout=60)
            settings = screen.runs[0]["config"]["settings"]
            assert settings["costs"]["impact_bps_at_full_adv"] == 25.0
            assert settings["kill_reset"] == "daily"
            assert "impact 25bp" in screen.status_text and "kill reset daily" in screen.status_text
        assert engine.config.backtest.impact_bps_at_full_adv == 0.0  # the engine's own: unchanged
    finally:
        engine.close()


async def test_ctrl_g_cancels_the_running_backtest(tmp_path: Path) -> None:
    engine = research_engine(tmp_path)
    try:
        async with _on_research(engine) as (pilot, screen):
            await pilot.press("ctrl+g")
            await pilot.pause(0.1)
            assert screen.status_text == "No backtest running"
            await _choose(pilot, "tsmom")
            screen.query_one("#params", Input).value = "lookback=60:300:20"
            await pilot.press("ctrl+r")
            await pilot.pause(0.2)
            job = screen.pending
            assert job is not None
            await pilot.press("ctrl+g")
            await pilot.pause(0.2)
            assert screen.status_text == f"Cancelled tsmom (job {job})"
            assert screen.pending is None
            await pilot.pause(1.0)  # polls go on: nothing arrives from the cancelled job
            assert screen.runs == [] and screen.status_text.startswith("Cancelled")
            assert engine.call("backtest.status", job=job).state == "cancelled"
    finally:
        engine.close()


async def test_escape_leaves_a_field_so_the_screen_keys_work_again(tmp_path: Path) -> None:
    """In a field, 1-9, ? and : are text; Escape hands the keys back to the table, and
    then ? opens Help and 5 comes back to Research with the typed text kept."""
    engine = research_engine(tmp_path)
    try:
        async with _on_research(engine) as (pilot, screen):
            for field_id in ("#params", "#start", "#end"):
                field = screen.query_one(field_id, Input)
                field.focus()
                await pilot.press("2", "question_mark", "colon")
                assert field.value == "2?:"
                assert pilot.app.screen is screen
                await pilot.press("escape")
                await pilot.pause()
                assert screen.focused is screen.query_one("#research-stats LiveTable")
            await pilot.press("question_mark")
            assert isinstance(pilot.app.screen, HelpScreen)
            await pilot.press("5")
            await pilot.pause()
            assert pilot.app.screen is screen
            assert screen.query_one("#end", Input).value == "2?:"
    finally:
        engine.close()


async def test_escape_from_the_strategy_selector_hands_keys_back_too(tmp_path: Path) -> None:
    engine = research_engine(tmp_path)
    try:
        async with _on_research(engine, (100, 30)) as (pilot, screen):
            await pilot.press("ctrl+t")  # narrow: the monthly table is the one on show
            screen.query_one("#strategy", Select).focus()
            await pilot.press("escape")
            await pilot.pause()
            assert screen.focused is screen.query_one("#research-months LiveTable")
            await pilot.press("colon")
            assert isinstance(pilot.app.screen, CommandLine)
    finally:
        engine.close()


async def test_a_run_names_its_window_and_a_short_one_is_warned(tmp_path: Path) -> None:
    """Queued: the status names the window and its sessions (a real total, not 0/0);
    done over under a year of sessions: the warning line says the Sharpe is unreliable."""
    engine = research_engine(tmp_path)
    try:
        async with _on_research(engine) as (pilot, screen):
            await _choose(pilot, "tsmom")
            await _type_window(pilot, "2009-10-01", "")
            await pilot.press("enter")
            await pilot.pause()
            job = engine.call("backtest.status", job=screen.pending)
            sessions = job.request["sessions"]
            assert job.total == sessions > 0
            # queued ("Running tsmom (job 1) over ...") or polled ("Running tsmom over ...")
            assert screen.status_text.startswith("Running tsmom")
            assert "over 2009-10-01..2009-12-31" in screen.status_text
            assert f"/{sessions} sessions" in screen.status_text or (
                f"({sessions} sessions after warm-up)" in screen.status_text
            )
            await _wait_runs(pilot, screen, 1)
            warning = screen.query_one("#research-warning")
            assert warning.display
            text = str(warning.render())
            assert f"Latest run: short window: {sessions} sessions < 252" in text
            table = screen.query_one("#research-stats LiveTable", LiveTable)
            assert str(table.get_row("sessions")[1]) == str(sessions)
    finally:
        engine.close()
