"""Pilot tests of the Data screen against the real engine and its data.* commands."""

from __future__ import annotations

import time
from datetime import date

import keyring
import polars as pl
from textual.pilot import Pilot
from textual.widgets import Static

from qgtm.core.quality import QualityFailure, Severity
from qgtm.engine.data.quality import store_failures
from qgtm.tui.app import QGTMApp
from qgtm.tui.screens.data import NO_DATASETS, DataScreen
from qgtm.tui.widgets.live_table import LiveTable
from qgtm.tui.widgets.table_panel import TablePanel
from tests.fakes.keyring_memory import MemoryKeyring
from tests.fakes.lbma import lbma_fake
from tests.tui.conftest import RecordingClient

SIZE = (120, 40)


async def rows_of(pilot: Pilot, panel: str, want: int, timeout: float = 3.0) -> list[str]:
    deadline = time.monotonic() + timeout
    keys: list[str] = []
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        keys = pilot.app.screen.query_one(f"#{panel} LiveTable", LiveTable).row_keys
        if len(keys) >= want:
            break
    return keys


def _seed(client: RecordingClient) -> None:
    market = client.engine.market
    market.upsert_series(
        pl.DataFrame(
            {
                "dataset": ["eia", "eia"],
                "series": ["crude_stocks_ex_spr_kbbl"] * 2,
                "period": [date(2024, 11, 22), date(2024, 11, 29)],
                "value": [428448.0, None],
                "knowledge_time": ["2024-11-27T15:30:00Z", "2024-12-04T15:30:00Z"],
            }
        ).with_columns(pl.col("knowledge_time").str.to_datetime(time_zone="UTC"))
    )
    failure = QualityFailure(
        "eia", "crude_stocks_ex_spr_kbbl", "null", Severity.CRITICAL, date(2024, 11, 29), "no value"
    )
    store_failures(market.connection, "eia", [failure])


async def test_key_8_shows_datasets_and_failures(client: RecordingClient) -> None:
    _seed(client)
    app = QGTMApp(client)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("8")
        assert isinstance(app.screen, DataScreen)
        assert await rows_of(pilot, "datasets", 1) == ["eia"]
        assert await rows_of(pilot, "failures", 1) == ["0"]
        table = app.screen.query_one("#datasets LiveTable", LiveTable)
        cells = [str(c) for c in table.get_row("eia")]
        assert cells[1] == "2" and cells[6] == "CRITICAL"


async def test_empty_store_says_how_to_fetch(client: RecordingClient) -> None:
    app = QGTMApp(client)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f8")
        await pilot.pause(0.3)
        panel = app.screen.query_one("#datasets", TablePanel)
        assert panel.has_class("-empty")
        assert str(panel.query_one(".empty-state", Static).content) == NO_DATASETS


async def test_r_refreshes_sources_and_reports_a_missing_key(
    client: RecordingClient, monkeypatch
) -> None:
    ring = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(ring)
    monkeypatch.delenv("QGTM_FRED_API_KEY", raising=False)
    monkeypatch.setattr("qgtm.engine.data.providers.commands.DEFAULT_REFRESH", ("lbma", "fred"))
    server = lbma_fake()
    monkeypatch.setenv("QGTM_LBMA_BASE_URL", server.url)
    app = QGTMApp(client)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("8")
            await pilot.press("r")
            assert await rows_of(pilot, "datasets", 1) == ["lbma"]
            assert any("fred: FAILED FRED API key not set" in a for a in client.engine.alerts)
    finally:
        server.close()
        keyring.set_keyring(previous)
