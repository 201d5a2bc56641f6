from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from qgtm.engine.data.pit import pit_join
from qgtm.engine.data.providers.base import HttpPolicy, SchemaError
from qgtm.engine.data.providers.cftc import DISAGGREGATED, CftcProvider, parse_cot_text
from qgtm.engine.data.providers.eia import EiaProvider
from qgtm.engine.data.providers.ingest import ingest
from qgtm.engine.data.providers.lbma import LbmaProvider
from qgtm.engine.data.providers.release import cot_release, eia_release
from tests.fakes.cftc import DISAGG_TEXT, cftc_fake
from tests.fakes.eia import eia_fake
from tests.fakes.lbma import lbma_fake

FAST = HttpPolicy(min_interval_s=0.0, backoff_s=0.0, timeout_s=5)


@pytest.fixture
def cftc(monkeypatch):
    server = cftc_fake()
    monkeypatch.setenv("QGTM_CFTC_BASE_URL", server.url)
    yield server
    server.close()


def test_cot_release_is_friday_1530_new_york():
    assert cot_release(date(2021, 12, 14)) == datetime(2021, 12, 17, 20, 30, tzinfo=UTC)


def test_cot_release_moves_to_next_business_day_when_friday_is_a_holiday():
    # Christmas 2021 observed on Friday 2021-12-24 -> Monday 2021-12-27 15:30 ET
    assert cot_release(date(2021, 12, 21)) == datetime(2021, 12, 27, 20, 30, tzinfo=UTC)


def test_eia_releases_wednesday_crude_thursday_gas_and_shift_after_holidays():
    assert eia_release(date(2024, 11, 15), 2) == datetime(2024, 11, 20, 15, 30, tzinfo=UTC)
    assert eia_release(date(2024, 11, 15), 3) == datetime(2024, 11, 21, 15, 30, tzinfo=UTC)
    # Thanksgiving Thursday 2024-11-28: gas storage comes out the Wednesday before, 12:00 ET
    assert eia_release(date(2024, 11, 22), 3) == datetime(2024, 11, 27, 17, 0, tzinfo=UTC)


def test_cot_columns_are_found_by_name_and_nets_computed():
    frame = parse_cot_text(DISAGG_TEXT, DISAGGREGATED)
    gold = frame.filter(pl.col("series") == "gold.managed_money_net").sort("period")
    assert gold["value"].to_list() == [129780 - 34105, 131250 - 32640]
    assert set(frame["series"].str.split(".").list.first()) == {"gold", "crude"}  # HRW dropped


def test_cot_missing_column_is_named():
    broken = DISAGG_TEXT.replace("M_Money_Positions_Long_All", "Something_Else")
    with pytest.raises(SchemaError, match="m_money_positions_long_all"):
        parse_cot_text(broken, DISAGGREGATED)


def test_cot_bad_date_names_field_and_row():
    broken = DISAGG_TEXT.replace(",211228,", ",21-12-28,")
    with pytest.raises(SchemaError, match=r"As_of_Date_In_Form_YYMMDD.*row 1"):
        parse_cot_text(broken, DISAGGREGATED)


def test_tuesday_cot_is_invisible_until_its_release(cftc, store):
    ingest(
        store,
        CftcProvider(FAST),
        since=date(2021, 1, 1),
        until=date(2021, 12, 31),
        today=date(2021, 12, 31),
    )
    times = [
        datetime(2021, 12, 24, 20, 30, tzinfo=UTC),  # Fri 12-24 (holiday): 12-21 not out
        datetime(2021, 12, 27, 20, 30, tzinfo=UTC),  # Mon 12-27 15:30: 12-21 released
        datetime(2021, 12, 31, 20, 30, tzinfo=UTC),  # Fri 12-31 (New Year observed): not 12-28
        datetime(2022, 1, 3, 20, 29, tzinfo=UTC),  # Mon 15:29: still not
        datetime(2022, 1, 3, 20, 30, tzinfo=UTC),  # Mon 15:30: 12-28 published
    ]
    decisions = pl.DataFrame(
        {"decision_time": times}, schema={"decision_time": pl.Datetime("us", "UTC")}
    )
    joined = pit_join(store.connection, decisions, "cot_legacy", "gold.noncommercial_net")
    tuesday_21, tuesday_28 = date(2021, 12, 21), date(2021, 12, 28)
    assert joined["period"].to_list() == [None, tuesday_21, tuesday_21, tuesday_21, tuesday_28]
    assert joined["value"][4] == 215366 - 58645


def test_eia_weekly_stocks_with_release_times(monkeypatch, keys, store):
    server = eia_fake()
    monkeypatch.setenv("QGTM_EIA_BASE_URL", server.url)
    try:
        report = ingest(store, EiaProvider(policy=FAST), today=date(2024, 12, 5))
    finally:
        server.close()
    frame = store.series_frame("eia")
    crude = frame.filter(pl.col("series") == "crude_stocks_ex_spr_kbbl")
    assert crude["value"].to_list() == [430266.0, 428448.0, 423357.0]
    assert crude["knowledge_time"][0] == datetime(2024, 11, 20, 15, 30, tzinfo=UTC)
    assert report.rows == 6


def test_lbma_prices_in_usd(monkeypatch, store):
    server = lbma_fake()
    monkeypatch.setenv("QGTM_LBMA_BASE_URL", server.url)
    try:
        ingest(store, LbmaProvider(FAST), today=date(2024, 1, 4))
    finally:
        server.close()
    gold = store.series_frame("lbma").filter(pl.col("series") == "gold_pm_usd")
    assert gold["value"].to_list() == [2064.4, 2034.1]
    # the free file is delayed to midnight London (winter time = UTC)
    assert gold["knowledge_time"][0] == datetime(2024, 1, 3, 0, 0, tzinfo=UTC)


def test_incremental_ingest_asks_only_from_what_the_store_holds(monkeypatch, keys, store):
    server = eia_fake()
    monkeypatch.setenv("QGTM_EIA_BASE_URL", server.url)
    try:
        ingest(store, EiaProvider(policy=FAST), today=date(2024, 12, 5))
        server.requests.clear()
        ingest(store, EiaProvider(policy=FAST), today=date(2024, 12, 5))
    finally:
        server.close()
    # newest stored period 2024-11-29 minus the 28-day revision overlap
    assert {r.query["start"][0] for r in server.requests} == {"2024-11-01"}


def test_eia_bad_value_names_field_and_row(monkeypatch, keys):
    server = eia_fake(crude=[("2024-11-15", 1), ("2024-11-22", "n/a")])
    monkeypatch.setenv("QGTM_EIA_BASE_URL", server.url)
    try:
        with pytest.raises(SchemaError, match=r"field 'value' is 'n/a' in row 1"):
            EiaProvider(policy=FAST).fetch(None, None)
    finally:
        server.close()
