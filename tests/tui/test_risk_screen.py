"""Pilot tests of the Risk screen and the two-person reset, from the keyboard."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

from qgtm.core.config import Config, EngineConfig
from qgtm.core.enums import KillTier
from qgtm.core.types import RiskLimits
from qgtm.engine.live.engine import TradingEngine
from qgtm.tui.app import QGTMApp
from qgtm.tui.screens.risk import RiskScreen
from qgtm.tui.widgets.confirm import ConfirmModal
from qgtm.tui.widgets.operator_modal import OperatorModal
from tests.tui.conftest import SHORT_DEMO, RecordingClient
from tests.tui.test_app import caught_up, run_palette_command

SIZE = (140, 45)


@pytest.fixture
def flattened(tmp_path: Path) -> Iterator[TradingEngine]:
    """A paused engine that hit FLATTEN, with operators alice and bob."""
    config = replace(
        Config(),
        demo=SHORT_DEMO,
        engine=EngineConfig(speed=1 / 30),
        risk=RiskLimits(max_drawdown_pct=0.005),
    )
    engine = TradingEngine(config, tmp_path)
    engine.pause()
    while engine.kill_tier < KillTier.FLATTEN:
        engine.step()
    engine.call("risk.add_operator", operator="alice", passphrase="alicepass1")
    engine.call("risk.add_operator", operator="bob", passphrase="bobpass22")
    yield engine
    engine.close()


async def until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached")


async def identify(pilot: Pilot, name: str, passphrase: str) -> None:
    """Answer the confirmation with y, then type name Enter passphrase Enter."""
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
    await pilot.press("y")
    await until(pilot, lambda: isinstance(app.screen, OperatorModal))
    assert app.screen.query_one("#operator-passphrase", Input).password  # masked entry
    await pilot.press(*name, "enter")
    await pilot.press(*passphrase, "enter")
    await until(pilot, lambda: not isinstance(app.screen, OperatorModal | ConfirmModal))


async def test_key_4_shows_every_limit_with_a_usage_bar(client: RecordingClient) -> None:
    app = QGTMApp(client)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await caught_up(pilot)
        assert isinstance(app.screen, RiskScreen)
        limits = str(app.screen.query_one("#risk-limits", Static).render())
        for label in (
            "Largest position",
            "Largest sector",
            "Correlated group",
            "Gross leverage",
            "Net leverage",
            "Vol (ex ante)",
            "CVaR (daily)",
        ):
            assert label in limits
        assert "NORMAL" in str(app.screen.query_one("#risk-tier", Static).render())


async def test_two_operators_reset_the_kill_switch_from_the_keyboard(flattened) -> None:
    app = QGTMApp(RecordingClient(flattened))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await caught_up(pilot)
        assert "FLATTEN" in str(app.screen.query_one("#risk-tier", Static).render())

        await pilot.press("r")
        await identify(pilot, "alice", "alicepass1")
        await until(pilot, lambda: flattened.risk.pending_reset() is not None)

        await pilot.press("a")
        await identify(pilot, "alice", "alicepass1")  # self-approval
        await pilot.pause(0.3)
        assert flattened.kill_tier is KillTier.FLATTEN
        assert any(r.event == "KILL_SWITCH_RESET_REFUSED" for r in flattened.audit.tail(20))

        await pilot.press("a")
        await identify(pilot, "bob", "bobpass22")
        await until(pilot, lambda: flattened.kill_tier is KillTier.NORMAL)
        await caught_up(pilot)
        assert "NORMAL" in str(app.screen.query_one("#risk-tier", Static).render())


async def test_palette_request_shows_exactly_what_will_happen(flattened) -> None:
    app = QGTMApp(RecordingClient(flattened))
    async with app.run_test(size=SIZE) as pilot:
        await caught_up(pilot)
        await run_palette_command(pilot, "risk: Request kill")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        assert app.screen.details == (
            "Asks to return the kill tier from FLATTEN to NORMAL",
            "Nothing changes yet: a second, different operator must approve",
            "Your passphrase is checked and never stored or shown",
        )
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmModal))
        assert flattened.risk.pending_reset() is None


async def test_palette_approve_without_a_request_says_so(flattened) -> None:
    app = QGTMApp(RecordingClient(flattened))
    async with app.run_test(size=SIZE) as pilot:
        await caught_up(pilot)
        await run_palette_command(pilot, "risk: Approve kill")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, ConfirmModal)
        assert flattened.kill_tier is KillTier.FLATTEN


async def test_palette_adds_an_operator_with_the_passphrase_typed_twice(flattened) -> None:
    app = QGTMApp(RecordingClient(flattened))
    async with app.run_test(size=SIZE) as pilot:
        await caught_up(pilot)
        await run_palette_command(pilot, "risk: Add operator")
        await until(pilot, lambda: isinstance(app.screen, OperatorModal))
        await pilot.press(*"carol", "enter", *"carolpass3", "enter", *"carolpass4", "enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, OperatorModal)  # the two entries differ: not accepted
        repeat = app.screen.query_one("#operator-repeat", Input)
        repeat.value = ""
        await pilot.press(*"carolpass3", "enter")
        await until(pilot, lambda: "carol" in flattened.risk.operators.names())
