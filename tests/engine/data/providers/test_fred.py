from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest

from qgtm.engine.data.pit import as_of, pit_join
from qgtm.engine.data.providers.base import HttpPolicy, MissingKeyError, ProviderError
from qgtm.engine.data.providers.fred import FredProvider
from qgtm.engine.data.providers.ingest import ingest
from tests.fakes.fred import fred_fake

FAST = HttpPolicy(min_interval_s=0.0, backoff_s=0.0, max_retries=3, timeout_s=5)


@pytest.fixture
def fred(keys, monkeypatch):
    server = fred_fake()
    monkeypatch.setenv("QGTM_FRED_BASE_URL", server.url)
    yield server
    server.close()


def test_fetch_returns_every_vintage_with_its_knowledge_time(fred):
    frame = FredProvider(("DGS10",), FAST).fetch(None, None)
    jan3 = frame.filter(frame["period"] == date(2024, 1, 3)).sort("knowledge_time")
    assert jan3["value"].to_list() == [3.91, 3.93]
    # realtime_start 2024-01-04 -> known from 00:00 New York on 2024-01-05
    assert jan3["knowledge_time"][0] == datetime(2024, 1, 5, 5, 0, tzinfo=UTC)
    assert frame.filter(frame["period"] == date(2024, 1, 5))["value"][0] is None


def test_pages_through_offset_until_count(fred):
    FredProvider(("DGS10",), FAST).fetch(None, None)
    assert [r.query["offset"][0] for r in fred.requests] == ["0", "2", "4"]


def test_retries_429_and_5xx_then_succeeds(fred):
    fred.failures.extend([429, 503])
    frame = FredProvider(("DGS10",), FAST).fetch(None, None)
    assert frame.height == 5


def test_api_key_never_reaches_the_log(fred, caplog):
    fred.failures.append(500)
    with caplog.at_level(logging.DEBUG):
        FredProvider(("DGS10",), FAST).fetch(None, None)
    assert "test-fred-key" not in caplog.text
    assert "http_retry" in caplog.text


def test_missing_key_names_the_command_that_sets_it(monkeypatch):
    monkeypatch.delenv("QGTM_FRED_API_KEY", raising=False)
    monkeypatch.setattr("keyring.get_password", lambda *a: None)
    with pytest.raises(MissingKeyError, match="qgtm keys set fred"):
        FredProvider(("DGS10",), FAST)


def test_unknown_series_is_one_clear_error(fred):
    with pytest.raises(ProviderError, match="series does not exist"):
        FredProvider(("NOPE",), FAST).fetch(None, None)


def test_revised_value_is_invisible_before_its_realtime_start(fred, store):
    ingest(store, FredProvider(("DGS10",), FAST), today=date(2024, 1, 12))
    con = store.connection
    before = as_of(con, "fred", "DGS10", datetime(2024, 1, 10, 20, 0, tzinfo=UTC))
    after = as_of(con, "fred", "DGS10", datetime(2024, 1, 11, 5, 0, tzinfo=UTC))
    assert before.filter(before["period"] == date(2024, 1, 3))["value"][0] == 3.91
    assert after.filter(after["period"] == date(2024, 1, 3))["value"][0] == 3.93


def test_pit_join_sees_only_published_observations(fred, store):
    import polars as pl

    ingest(store, FredProvider(("DGS10",), FAST), today=date(2024, 1, 12))
    decisions = pl.DataFrame(
        {
            "decision_time": [
                datetime(2024, 1, 4, 20, 30, tzinfo=UTC),  # 15:30 NY Jan 4
                datetime(2024, 1, 5, 20, 30, tzinfo=UTC),
            ]
        },
        schema={"decision_time": pl.Datetime("us", "UTC")},
    )
    joined = pit_join(store.connection, decisions, "fred", "DGS10")
    # Jan 4: the Jan 2 value (released Jan 3, known from Jan 4 00:00) is the newest known.
    assert joined["period"].to_list() == [date(2024, 1, 2), date(2024, 1, 3)]
    assert joined["value"].to_list() == [3.95, 3.91]
