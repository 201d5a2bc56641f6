from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from qgtm.engine.data.providers.alpaca import AlpacaBarsProvider
from qgtm.engine.data.providers.ingest import ingest
from tests.fakes.alpaca_data import alpaca_data_fake


@pytest.fixture
def alpaca(keys, monkeypatch):
    server = alpaca_data_fake(page_size=2)
    monkeypatch.setenv("QGTM_ALPACA_DATA_BASE_URL", server.url)
    yield server
    server.close()


def test_daily_bars_are_adjusted_and_paginated(alpaca):
    frame = AlpacaBarsProvider(("GLD", "USO")).fetch(date(2024, 1, 1), date(2024, 1, 4))
    assert frame.height == 6
    assert frame.filter(frame["symbol"] == "USO")["close"].to_list() == [65.2, 67.4, 66.9]
    assert frame["ts"][0] == datetime(2024, 1, 2, 5, 0, tzinfo=UTC)
    # a daily bar is known at the session close, 16:00 New York, not at its midnight stamp
    assert frame["knowledge_time"][0] == datetime(2024, 1, 2, 21, 0, tzinfo=UTC)
    assert all(r.query["adjustment"] == ["all"] for r in alpaca.requests)
    assert len(alpaca.requests) == 3  # 6 bars in pages of 2, via next_page_token
    assert alpaca.requests[0].headers["APCA-API-KEY-ID"] == "test-alpaca-key"


def test_incremental_refresh_starts_near_the_newest_stored_bar(alpaca, store):
    provider = AlpacaBarsProvider(("GLD", "USO"))
    ingest(store, provider, since=date(2024, 1, 1), until=date(2024, 1, 4), today=date(2024, 1, 5))
    alpaca.requests.clear()
    ingest(store, provider, until=date(2024, 1, 4), today=date(2024, 1, 5))
    assert alpaca.requests[0].query["start"][0].startswith("2024-01-01")  # 01-04 minus 3 days
    assert store.provider_bars_frame("1Day").height == 6  # upsert, no duplicates


def test_intraday_timeframe_is_requested_as_such(alpaca):
    AlpacaBarsProvider(("GLD",), timeframe="1Hour").fetch(date(2024, 1, 2), date(2024, 1, 2))
    assert alpaca.requests[0].query["timeframe"] == ["1Hour"]


def test_bar_knowledge_time_follows_early_closes_and_intraday_length():
    from qgtm.engine.data.providers.alpaca import bar_knowledge_time

    day_after_thanksgiving = datetime(2024, 11, 29, 5, 0, tzinfo=UTC)  # 13:00 NY close
    assert bar_knowledge_time(day_after_thanksgiving, "1Day") == datetime(
        2024, 11, 29, 18, 0, tzinfo=UTC
    )
    hour = datetime(2024, 1, 2, 15, 0, tzinfo=UTC)
    assert bar_knowledge_time(hour, "1Hour") == datetime(2024, 1, 2, 16, 0, tzinfo=UTC)
