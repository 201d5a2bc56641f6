"""The terminal paints before the in-process engine exists (issue 21): the CLI hands the
app a client that builds the engine in a worker thread once the app has mounted."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from textual.pilot import Pilot
from textual.widgets import Label, Static

from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.live.inprocess import EngineStartingError, InProcessClient
from qgtm.tui.app import QGTMApp
from qgtm.tui.screens.monitor import STARTING_STATUS, MonitorScreen
from qgtm.tui.screens.orders import NO_ORDERS, OrdersScreen
from qgtm.tui.widgets.table_panel import TablePanel
from tests.tui.conftest import make_engine

SIZE = (120, 40)
BUILD_TIMEOUT_S = 120.0
"""Generous: the demo market is generated on a shared, busy machine."""


class GatedFactory:
    """Builds a real demo engine, but only once the test opens the gate."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.gate = threading.Event()
        self.built: list[TradingEngine] = []

    def __call__(self) -> TradingEngine:
        if not self.gate.wait(BUILD_TIMEOUT_S):
            raise TimeoutError("the test never opened the gate")
        engine = make_engine(self.data_dir)
        self.built.append(engine)
        return engine


async def wait_for(pilot: Pilot, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached; start error {pilot.app.start_error!r}")
        await pilot.pause(0.05)


def text_of(app: QGTMApp, selector: str) -> str:
    widget = app.screen.query_one(selector)
    assert isinstance(widget, Label | Static)
    return str(widget.content)


@pytest.fixture
def factory(tmp_path: Path):
    factory = GatedFactory(tmp_path)
    yield factory
    factory.gate.set()


async def test_the_first_frame_shows_the_starting_state_then_the_engine(
    factory: GatedFactory,
) -> None:
    client = InProcessClient(factory=factory)
    app = QGTMApp(client)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert isinstance(app.screen, MonitorScreen)
            assert text_of(app, "#banner #mode") == "STARTING"
            assert text_of(app, "#monitor-status") == STARTING_STATUS
            assert client.task_health() == "starting"
            assert app.latest is None and not factory.built
            with pytest.raises(EngineStartingError):
                client.snapshot()

            factory.gate.set()
            await wait_for(pilot, lambda: app.latest is not None)
            await wait_for(pilot, lambda: "PAPER" in text_of(app, "#banner #mode"))
            assert text_of(app, "#monitor-status").startswith("ENGINE ok")
            assert app.screen.shown_snapshot is app.latest
    finally:
        client.close()


async def test_screens_and_controls_wait_for_the_engine_without_failing(
    factory: GatedFactory,
) -> None:
    client = InProcessClient(factory=factory)
    app = QGTMApp(client)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")  # Orders: its empty state, no snapshot needed
            assert isinstance(app.screen, OrdersScreen)
            assert text_of(app, "#banner #mode") == "STARTING"
            blotter = app.screen.query_one("#blotter", TablePanel)
            assert blotter.has_class("-empty")
            assert text_of(app, "#blotter .empty-state") == NO_ORDERS
            await pilot.press("p", "n", "+")  # pause, step, faster: "still starting"
            assert app.latest is None and app.return_code is None
            factory.gate.set()
            await wait_for(pilot, lambda: app.latest is not None)
            await wait_for(pilot, lambda: app.screen.shown_snapshot is app.latest)
            assert "PAPER" in text_of(app, "#banner #mode")
    finally:
        client.close()


async def test_quitting_while_the_engine_starts_still_closes_it(factory: GatedFactory) -> None:
    client = InProcessClient(factory=factory)
    app = QGTMApp(client)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code in (None, 0) and app.start_error is None
    factory.gate.set()
    await asyncio.to_thread(client.close)  # waits for the build, then closes the engine
    (engine,) = factory.built
    with pytest.raises(duckdb.ConnectionException):
        engine.market.connection.execute("SELECT 1")


async def test_an_engine_that_cannot_be_built_ends_the_app_with_its_error(
    tmp_path: Path,
) -> None:
    def broken() -> TradingEngine:
        raise OSError(f"cannot open {tmp_path / 'market.duckdb'}")

    client = InProcessClient(factory=broken)
    app = QGTMApp(client)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.start_error is not None)
    assert app.return_code == 1
    assert isinstance(app.start_error, OSError) and "market.duckdb" in str(app.start_error)
    client.close()
