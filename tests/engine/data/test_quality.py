from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from qgtm.engine.data.quality import (
    PRICE_POLICY,
    QualityFailure,
    QualityPolicy,
    Severity,
    blocked_datasets,
    blocked_symbols,
    check_observations,
    store_failures,
    stored_failures,
)
from qgtm.engine.data.store import MarketStore

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
if not SHARED.exists():
    SHARED = Path("/work/shared/data")
needs_shared = pytest.mark.skipif(
    not SHARED.exists(), reason=f"reference data folder {SHARED} is absent"
)

D = [date(2024, 1, d) for d in (2, 3, 4, 5, 8)]


def checks(failures: list[QualityFailure]) -> list[tuple[str, date]]:
    return [(f.check, f.day) for f in failures]


def test_clean_series_passes():
    assert check_observations("x", "s", D, [1.0, 1.1, 1.0, 1.05, 1.02], PRICE_POLICY) == []


def test_null_value_is_critical():
    failures = check_observations("x", "s", D, [1.0, None, 1.0, 1.0, 1.0], PRICE_POLICY)
    assert checks(failures) == [("null", D[1])]
    assert failures[0].severity is Severity.CRITICAL


def test_negative_price_fails_range():
    failures = check_observations("x", "s", D, [1.0, 1.0, -0.5, 1.0, 1.0], PRICE_POLICY)
    assert ("range", D[2]) in checks(failures)


def test_out_of_order_and_duplicate_timestamps():
    days = [D[0], D[2], D[1], D[2], D[4]]
    failures = check_observations("x", "s", days, [1.0] * 5, PRICE_POLICY)
    assert checks(failures) == [("monotonic", D[1]), ("duplicate", D[2])]


def test_split_like_jump_is_flagged_with_its_size():
    failures = check_observations("x", "s", D, [100.0, 100.0, 50.0, 50.0, 50.0], PRICE_POLICY)
    assert checks(failures) == [("split_jump", D[2])]
    assert "-50.0%" in failures[0].detail


def test_stale_series_fails_freshness():
    failures = check_observations("x", "s", D, [1.0] * 5, PRICE_POLICY, today=date(2024, 1, 20))
    assert checks(failures) == [("freshness", date(2024, 1, 20))]


def test_distribution_drift_detected_by_ks_test():
    import numpy as np

    rng = np.random.default_rng(3)
    calm = np.cumsum(rng.normal(0, 0.1, 504)) + 100
    wild = calm[-1] + np.cumsum(rng.normal(0, 2.0, 64))
    values = [float(v) for v in np.concatenate([calm, wild])]
    days = [date(2020, 1, 1) + timedelta(days=i) for i in range(len(values))]
    policy = QualityPolicy(max_abs_return=None)
    assert [f.check for f in check_observations("x", "s", days, values, policy)] == ["drift"]
    steady = [float(v) for v in calm]
    assert check_observations("x", "s", days[: len(steady)], steady, policy) == []


def test_critical_failure_blocks_the_symbols_on_that_data(tmp_path):
    store = MarketStore(tmp_path)
    failure = QualityFailure(
        "eia", "crude_stocks_ex_spr_kbbl", "null", Severity.CRITICAL, date(2024, 3, 6), "no value"
    )
    store_failures(store.connection, "eia", [failure])
    assert set(blocked_symbols(store.connection, date(2024, 3, 6))) == {"USO", "BNO"}
    assert set(blocked_symbols(store.connection, date(2024, 3, 7))) == {"USO", "BNO"}
    assert blocked_symbols(store.connection, date(2024, 3, 8)) == {}
    assert list(blocked_datasets(store.connection, date(2024, 3, 6))) == [
        "eia:crude_stocks_ex_spr_kbbl"
    ]
    assert stored_failures(store.connection) == [failure]
    store.close()


def test_warnings_do_not_block(tmp_path):
    store = MarketStore(tmp_path)
    warning = QualityFailure("lbma", "gold_pm_usd", "drift", Severity.WARNING, date(2024, 3, 6), "")
    store_failures(store.connection, "lbma", [warning])
    assert blocked_symbols(store.connection, date(2024, 3, 6)) == {}
    store.close()


def _real(name: str) -> tuple[list[date], list[float | None]]:
    frame = pl.read_csv(SHARED / name, schema={"Date": pl.Date, "Price": pl.Float64})
    return frame["Date"].to_list(), frame["Price"].to_list()


@needs_shared
def test_real_wti_negative_settlement_and_big_moves_are_caught():
    days, values = _real("eia_wti_spot_daily.csv")
    failures = check_observations("eia_spot", "wti_spot", days, values, PRICE_POLICY)
    found = set(checks(failures))
    assert ("range", date(2020, 4, 20)) in found
    assert ("split_jump", date(1991, 1, 17)) in found
    assert not [f for f in failures if f.check in ("duplicate", "monotonic")]


@needs_shared
def test_real_henry_hub_missing_value_is_caught():
    days, values = _real("eia_henry_hub_spot_daily.csv")
    failures = check_observations("eia_spot", "henry_hub_spot", days, values, PRICE_POLICY)
    assert ("null", date(2018, 1, 5)) in set(checks(failures))


@needs_shared
def test_real_failures_block_uso_on_the_negative_wti_day(tmp_path):
    days, values = _real("eia_wti_spot_daily.csv")
    failures = check_observations("eia_spot", "wti_spot", days, values, PRICE_POLICY)
    store = MarketStore(tmp_path)
    store_failures(store.connection, "eia_spot", failures)
    assert "USO" in blocked_symbols(store.connection, date(2020, 4, 20))
    assert "USO" in blocked_symbols(store.connection, date(2020, 4, 21))
    store.close()


def test_intraday_bars_are_checked_per_timestamp():
    from datetime import UTC, datetime

    from qgtm.engine.data.quality import check_bars_frame

    stamps = [datetime(2024, 1, 2, h, tzinfo=UTC) for h in (15, 16, 16, 17)]
    frame = pl.DataFrame(
        {
            "symbol": ["GLD"] * 4,
            "timeframe": ["1Hour"] * 4,
            "ts": stamps,
            "close": [190.0, 190.5, 190.5, 95.0],
        }
    )
    failures = check_bars_frame(frame, "bars_1Hour", today=date(2024, 3, 1))
    assert [(f.check, f.severity) for f in failures] == [
        ("duplicate", Severity.CRITICAL),
        ("split_jump", Severity.CRITICAL),
    ]
