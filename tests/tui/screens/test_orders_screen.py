"""Pilot tests of the Orders & TCA screen against the real engine."""

from __future__ import annotations

import time

import pytest
from textual.pilot import Pilot

from qgtm.core.results import ChildOrderRow
from qgtm.tui.app import QGTMApp
from qgtm.tui.formatting import DASH
from qgtm.tui.screens.orders import OrdersScreen, benchmarks, child_row
from qgtm.tui.widgets.live_table import LiveTable
from tests.tui.conftest import RecordingClient

SIZE = (140, 40)


@pytest.fixture
def app(client: RecordingClient) -> QGTMApp:
    return QGTMApp(client)


def _keys(app: QGTMApp, panel_id: str) -> list[str]:
    return app.screen.query_one(f"#{panel_id} LiveTable", LiveTable).row_keys


def _cell(app: QGTMApp, panel_id: str, key: str, column: str) -> str:
    table = app.screen.query_one(f"#{panel_id} LiveTable", LiveTable)
    return str(table.get_cell(key, column))


async def _until(pilot: Pilot, predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("the screen did not show it in time")
        await pilot.pause(0.05)


async def test_blotter_shows_algo_and_fill_state_and_tca_tables_fill_in(
    app: QGTMApp, client: RecordingClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await client.advance(3)
        await pilot.press("2")
        assert isinstance(app.screen, OrdersScreen)
        app.poll_snapshot()
        expected = await client.call("execution.tca")
        blotter = await client.call("execution.blotter")
        await _until(pilot, lambda: len(_keys(app, "tca-orders")) == len(expected.orders))
        filled = next(o for o in blotter if o.status == "FILLED")
        cid = filled.client_order_id
        await _until(pilot, lambda: _cell(app, "blotter", cid, "algo") == filled.algo)
        assert _cell(app, "blotter", cid, "filled_qty") == f"{filled.quantity:,}"
        assert _keys(app, "tca-strategies") == ["tsmom"]
        row = next(r for r in expected.orders if r.client_order_id == cid)
        assert _cell(app, "tca-orders", cid, "is") == f"{row.implementation_shortfall_bps:+.1f}"
        # the paper venue benchmarks against its daily bar, and the screen says so
        assert (row.arrival_source, row.vwap_source) == ("session_bar", "session_bar")
        assert _cell(app, "tca-orders", cid, "bench") == "bar/bar"


async def test_highlighting_an_order_lists_its_child_fills(app: QGTMApp, client: RecordingClient):
    # Make every order a large one: TWAP children under a tight participation cap.
    engine = client.engine
    async with app.run_test(size=SIZE) as pilot:
        from qgtm.engine.execution.brokers.paper import PaperBroker

        assert isinstance(engine.broker, PaperBroker)
        engine.broker.participation_cap = 0.0001
        engine.config = _config_with_tiny_adv_thresholds(engine.config)
        await client.advance(2)
        await pilot.press("2")
        app.poll_snapshot()
        blotter = await client.call("execution.blotter")
        worked = [o for o in blotter if o.children > 0]
        assert worked, blotter
        cid = worked[0].client_order_id
        await _until(pilot, lambda: cid in _keys(app, "blotter"))
        table = app.screen.query_one("#blotter LiveTable", LiveTable)
        table.focus()
        table.move_cursor(row=table.get_row_index(cid))
        await _until(pilot, lambda: len(_keys(app, "children")) == worked[0].children)
        assert all(key.startswith(cid.rpartition("-")[0]) for key in _keys(app, "children"))
        first = _keys(app, "children")[0]
        assert _cell(app, "children", first, "status") == "FILLED"
        assert _cell(app, "blotter", cid, "algo") == "TWAP"


def _config_with_tiny_adv_thresholds(config):
    from dataclasses import replace

    execution = replace(config.execution, vwap_adv_fraction=0.0, twap_adv_fraction=0.0)
    return replace(config, execution=execution)


def test_a_planned_child_shows_its_state_and_release_in_new_york_time():
    """A wall-clock slice not sent yet: PLANNED, nothing filled, no price, due 09:30 NY."""
    key, cells = child_row(
        ChildOrderRow(
            child_order_id="2b7bfcd0-20260302-GLD-3",
            quantity=120,
            filled=0,
            price=None,
            filled_at=None,
            status="PLANNED",
            release_at="2026-03-03T14:30:00+00:00",
        )
    )
    assert key == "2b7bfcd0-20260302-GLD-3"  # the row key keeps the whole id
    assert tuple(str(c) for c in cells) == (
        "GLD-3",
        "PLANNED",
        "120",
        "0",
        DASH,
        "2026-03-03 09:30:00",
    )
    assert benchmarks("quote_mid", "minute_bar_vwap") == "quote/1m vwap"
    assert benchmarks("", "") == f"{DASH}/{DASH}"  # rows from before sources were kept
