"""Pilot tests of the Strategies screen against the real engine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date

import pytest
from textual.pilot import Pilot
from textual.widgets import Label, Sparkline, Static

from qgtm.core.config import Config, EngineConfig
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.live.inprocess import InProcessClient
from qgtm.engine.strategies.registry import STRATEGIES
from qgtm.tui.app import QGTMApp
from qgtm.tui.screens.strategies import StrategiesScreen
from qgtm.tui.widgets.live_table import LiveTable
from tests.tui.conftest import SHORT_DEMO

SIZE = (140, 45)
CONFIGURED = ("tsmom", "bollinger_mr", "sma_cross")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TradingEngine]:
    tmp_path = tmp_path_factory.mktemp("strategies-screen")
    config = replace(
        Config(),
        demo=SHORT_DEMO,
        engine=EngineConfig(speed=1 / 30, strategies=CONFIGURED, start=date(2009, 6, 1)),
    )
    engine = TradingEngine(config, tmp_path)
    engine.pause()
    for _ in range(3):
        engine.step()
    yield engine
    engine.close()


async def wait_for(pilot: Pilot, condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        if condition():
            return
    raise AssertionError("condition not reached")


def library_keys(app: QGTMApp) -> list[str]:
    return app.screen.query_one("#strategy-list LiveTable", LiveTable).row_keys


async def test_key_6_opens_the_library_with_every_strategy(engine: TradingEngine) -> None:
    app = QGTMApp(InProcessClient(engine))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        assert isinstance(app.screen, StrategiesScreen)
        await wait_for(pilot, lambda: len(library_keys(app)) == len(STRATEGIES))
        assert len(library_keys(app)) >= 40


async def test_details_status_and_last_signals_follow_the_cursor(engine: TradingEngine) -> None:
    app = QGTMApp(InProcessClient(engine))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f6")
        screen = app.screen
        assert isinstance(screen, StrategiesScreen)
        await wait_for(pilot, lambda: screen.selected is not None)
        first = library_keys(app)[0]
        assert screen.selected == first
        table = screen.library
        table.focus()
        target = library_keys(app).index("sma_cross")
        for _ in range(target):
            await pilot.press("down")
        await wait_for(pilot, lambda: screen.selected == "sma_cross")
        details = str(screen.query_one("#strategy-details", Static).content)
        assert "Brock, Lakonishok, LeBaron" in details
        assert "regimes    trending, crisis" in details
        assert "slow" in details and "[50, 300]" in details
        status = screen.entries["sma_cross"].status
        regime = engine.regime
        assert status == (
            "active"
            if regime in ("trending", "crisis")
            else f"filtered: regime {regime}; trades in trending, crisis"
        )
        signal_keys = screen.query_one("#strategy-signals LiveTable", LiveTable).row_keys
        recorded = engine.state.conn.execute(
            "SELECT count(*) FROM signals WHERE strategy = 'sma_cross'"
        ).fetchone()[0]
        assert len(signal_keys) == min(recorded, 20)


async def test_tsmom_runs_in_every_regime_and_its_signals_are_listed(engine: TradingEngine) -> None:
    app = QGTMApp(InProcessClient(engine))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        screen = app.screen
        await wait_for(pilot, lambda: "tsmom" in screen.entries)
        assert screen.entries["tsmom"].status == "active"
        assert screen.entries["rsi2"].status == "not configured"
        screen.selected = "tsmom"
        await screen.refresh_selection()
        keys = screen.query_one("#strategy-signals LiveTable", LiveTable).row_keys
        # 18 ETFs a decision, newest first, 20 at most: the last decision's 18 then 2 more.
        latest = engine.state.conn.execute(
            "SELECT max(as_of) FROM signals WHERE strategy = 'tsmom'"
        ).fetchone()[0]
        assert len(keys) == 20
        assert [k.split("|")[0] for k in keys[:18]] == [latest] * 18


async def test_banner_shows_the_regime(engine: TradingEngine) -> None:
    app = QGTMApp(InProcessClient(engine))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.latest is not None)
        await pilot.pause(0.1)
        text = str(app.screen.query_one("#banner #regime", Label).content)
        assert engine.regime is not None
        assert text == f"REGIME {engine.regime.replace('_', '-').upper()}"


async def test_selected_strategy_shows_its_model_and_decay_history(
    engine: TradingEngine,
) -> None:
    app = QGTMApp(InProcessClient(engine))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("6")
        screen = app.screen
        await wait_for(pilot, lambda: "tsmom" in screen.entries)
        screen.selected = "tsmom"
        await screen.refresh_selection()
        text = str(screen.query_one("#strategy-learning", Static).content)
        assert "model tsmom@v1" in text and "decay" in text
        history = engine.call("learn.history", strategy="tsmom")
        assert screen.query_one("#strategy-decay", Sparkline).data == [h.sharpe for h in history]


@pytest.mark.parametrize(("size", "short"), [((80, 24), True), ((200, 60), False)])
async def test_the_last_signals_show_on_a_short_terminal(
    engine: TradingEngine, size: tuple[int, int], short: bool
) -> None:
    """At 80x24 the details shrink and the sparkline hides so LAST SIGNALS keeps rows."""
    app = QGTMApp(InProcessClient(engine))
    async with app.run_test(size=size) as pilot:
        await pilot.press("6")
        await pilot.pause()
        signals = app.screen.query_one("#strategy-signals")
        assert signals.region.height >= 6  # title, header and at least a few rows
        assert signals.region.bottom <= size[1] - 1  # above the footer
        assert app.screen.query_one(Sparkline).display is not short
        title = app.screen.query_one("#strategy-learning", Static).border_title
        assert ("rolling Sharpe below" in str(title)) is not short
