"""Pilot tests of the QGTM terminal against an engine client.

The `client` fixture (tests/tui/conftest.py) runs the real TradingEngine on a short demo
market through the in-process client.
"""

from __future__ import annotations

import time

import pytest
from textual.command import CommandList
from textual.pilot import Pilot
from textual.widgets import Label

from qgtm.tui.app import QGTMApp
from qgtm.tui.screens.audit import AuditScreen
from qgtm.tui.screens.monitor import MonitorScreen
from qgtm.tui.screens.orders import NO_ORDERS, OrdersScreen
from qgtm.tui.widgets.live_table import LiveTable
from qgtm.tui.widgets.table_panel import TablePanel
from tests.tui.conftest import RecordingClient

SIZE = (120, 40)


@pytest.fixture
def app(client: RecordingClient) -> QGTMApp:
    return QGTMApp(client)


async def caught_up(pilot: Pilot, timeout: float = 1.5) -> None:
    """Wait until the app has pushed the client's latest snapshot to the screen."""
    app = pilot.app
    assert isinstance(app, QGTMApp)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        latest, current = app.latest, app.client.snapshot()
        shown = getattr(app.screen, "shown_snapshot", None)
        if latest is not None and latest.version == current.version and shown is latest:
            return
    raise AssertionError("the screen did not catch up with the engine's snapshot")


async def run_palette_command(pilot: Pilot, query: str) -> None:
    """Open the command palette, type `query`, wait for its hits and run the first."""
    await pilot.press("ctrl+p")
    await pilot.press(*query)
    commands = pilot.app.screen.query_one(CommandList)
    deadline = time.monotonic() + 1.0
    while commands.option_count == 0 and time.monotonic() < deadline:
        await pilot.pause(0.02)
    await pilot.press("enter")
    await pilot.pause()


def banner_text(app: QGTMApp, label_id: str) -> str:
    return str(app.screen.query_one(f"#banner #{label_id}", Label).content)


def panel_keys(app: QGTMApp, panel_id: str) -> list[str]:
    return app.screen.query_one(f"#{panel_id} LiveTable", LiveTable).row_keys


async def test_banner_shows_paper_demo_mode(app: QGTMApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await caught_up(pilot)
        assert "PAPER · DEMO" in banner_text(app, "mode")


async def test_client_is_started_on_mount_and_stopped_on_exit(
    app: QGTMApp, client: RecordingClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await caught_up(pilot)
        assert client.calls[0] == "start"
    assert client.calls[-1] == "stop"


async def test_positions_and_orders_appear_after_sessions_advance(
    app: QGTMApp, client: RecordingClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await client.advance(3)
        await caught_up(pilot)
        snapshot = client.snapshot()
        assert panel_keys(app, "positions") == [p.symbol for p in snapshot.positions]
        assert panel_keys(app, "orders") == [o.client_order_id for o in snapshot.recent_orders]
        assert panel_keys(app, "orders")
        assert len(panel_keys(app, "watchlist")) == len(snapshot.watchlist)
        assert snapshot.equity != 1_000_000.0
        assert f"{snapshot.equity:,.0f}" in banner_text(app, "equity")


async def test_number_keys_switch_screens(app: QGTMApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        assert isinstance(app.screen, OrdersScreen)
        await pilot.press("3")
        assert isinstance(app.screen, AuditScreen)
        await pilot.press("1")
        assert isinstance(app.screen, MonitorScreen)


async def test_function_keys_switch_screens(app: QGTMApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        assert isinstance(app.screen, OrdersScreen)
        await pilot.press("f3")
        assert isinstance(app.screen, AuditScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, MonitorScreen)


async def test_switched_to_screen_shows_data_that_arrived_while_hidden(
    app: QGTMApp, client: RecordingClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await caught_up(pilot)
        await client.advance(3)
        await pilot.press("2")
        await caught_up(pilot)
        orders = [o.client_order_id for o in client.snapshot().recent_orders]
        assert panel_keys(app, "blotter") == orders
        await pilot.press("3")
        await caught_up(pilot)
        assert panel_keys(app, "audit")


async def test_p_pauses_and_pressing_again_resumes(app: QGTMApp, client: RecordingClient) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await caught_up(pilot)
        await pilot.press("p")
        assert not client.snapshot().running
        assert banner_text(app, "run-state").startswith("PAUSED")
        await pilot.press("p")
        assert client.snapshot().running
        assert banner_text(app, "run-state").startswith("RUNNING")


async def test_space_toggles_pause(app: QGTMApp, client: RecordingClient) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await caught_up(pilot)
        await pilot.press("space")
        assert not client.snapshot().running


async def test_plus_and_minus_change_replay_speed(app: QGTMApp, client: RecordingClient) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await caught_up(pilot)
        start_speed = client.snapshot().speed
        await pilot.press("plus")
        assert client.snapshot().speed > start_speed
        await pilot.press("minus", "minus")
        assert client.snapshot().speed < start_speed


async def test_n_steps_one_session(app: QGTMApp, client: RecordingClient) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await caught_up(pilot)
        sessions = client.snapshot().sessions_done
        await pilot.press("n")
        assert client.snapshot().sessions_done == sessions + 1


async def test_palette_pause_command_pauses_engine(app: QGTMApp, client: RecordingClient) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await caught_up(pilot)
        await run_palette_command(pilot, "pause")
        assert not client.snapshot().running


async def test_palette_offers_resume_while_paused(app: QGTMApp, client: RecordingClient) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await caught_up(pilot)
        await pilot.press("p")
        await run_palette_command(pilot, "resume")
        assert client.snapshot().running


async def test_palette_switches_screens(app: QGTMApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await run_palette_command(pilot, "audit")
        assert isinstance(app.screen, AuditScreen)


async def test_q_quits_and_stops_engine(app: QGTMApp, client: RecordingClient) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await caught_up(pilot)
        await pilot.press("q")
        await pilot.pause()
        assert "stop" in client.calls
        assert app.return_code == 0


async def test_empty_blotter_explains_the_warm_up(app: QGTMApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await caught_up(pilot)
        panel = app.screen.query_one("#blotter", TablePanel)
        assert panel.has_class("-empty")
        assert NO_ORDERS.startswith("No orders yet")


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
async def test_monitor_renders_every_panel_at_small_and_large_sizes(
    client: RecordingClient, size: tuple[int, int]
) -> None:
    app = QGTMApp(client)
    async with app.run_test(size=size) as pilot:
        await client.advance(4)
        await caught_up(pilot)
        for panel_id in ("watchlist", "chart-panel", "positions", "orders", "alerts-panel"):
            panel = app.screen.query_one(f"#{panel_id}")
            assert panel.region.width > 0
            assert panel.region.height > 0


async def test_a_poll_landing_during_shutdown_is_ignored(client: RecordingClient) -> None:
    """The poll timer can fire after the app's screens are gone (seen in CI as
    ScreenStackError from the timer): news then has no screen to go to."""
    app = QGTMApp(client)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        stack = app._screen_stacks[app._current_mode]
        screens = list(stack)
        stack.clear()  # as during shutdown
        client.engine.step()  # news for the poll
        app.poll_snapshot()
        assert app.latest is client.snapshot()
        stack.extend(screens)
