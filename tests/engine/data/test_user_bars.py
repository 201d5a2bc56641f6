"""The user's own bars: per-row validation with reasons, close-only series, storing."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from qgtm.engine.data.store import MarketStore
from qgtm.engine.data.user_bars import UserBarsError, load_user_bars, summary_lines, to_panel

FIXTURES = Path(__file__).parent / "fixtures"
# the reference data sit in ../shared/data beside the project (or one level up from a
# git worktree); tests that need them skip when neither exists
_ROOT = Path(__file__).resolve().parents[3]
_CANDIDATES = [_ROOT.parent / "shared" / "data", _ROOT.parent.parent / "shared" / "data"]
SHARED = next((p for p in _CANDIDATES if p.exists()), _CANDIDATES[0])


def test_yahoo_csv_rows_are_validated_with_line_and_reason() -> None:
    result = load_user_bars(FIXTURES / "gld_yahoo.csv")
    assert result.symbols == ("GLD_YAHOO",)
    assert result.bars["date"].cast(pl.String).to_list() == [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-16",
    ]
    reasons = {r.line: r.reason for r in result.rejected}
    assert reasons == {
        5: "duplicate date 2024-01-04",
        6: "high 191.0 below low 193.0",
        7: "missing or unparseable number",
        8: "close 194.0 outside [low 191.0, high 193.0]",
        9: "negative volume -5.0",
        10: "non-positive price",
        11: "date 2024-01-03 before the previous row's 2024-01-04",
        12: "missing or unparseable number",
        13: "unparseable date '2024-13-15' (want YYYY-MM-DD)",
    }


def test_symbol_option_names_a_file_without_a_symbol_column() -> None:
    assert load_user_bars(FIXTURES / "gld_yahoo.csv", symbol="gld").symbols == ("GLD",)


def test_parquet_input_is_read_like_csv(tmp_path: Path) -> None:
    frame = pl.read_csv(FIXTURES / "gld_yahoo.csv", infer_schema=False).with_columns(
        pl.lit("IAU").alias("Symbol")
    )
    frame.write_parquet(tmp_path / "bars.parquet")
    result = load_user_bars(tmp_path / "bars.parquet")
    assert result.symbols == ("IAU",)
    assert result.bars.height == 4


def test_file_without_usable_columns_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("when,what\n2024-01-02,1\n")
    with pytest.raises(UserBarsError, match="no Date column"):
        load_user_bars(bad)
    with pytest.raises(UserBarsError, match="no such file"):
        load_user_bars(tmp_path / "missing.csv")


def test_accepted_bars_are_upserted_with_source_user(tmp_path: Path) -> None:
    result = load_user_bars(FIXTURES / "gld_yahoo.csv", symbol="GLD")
    store = MarketStore(tmp_path)
    assert store.upsert_user_bars(result.bars) == 4
    assert store.upsert_user_bars(result.bars) == 4  # again: replaced, not duplicated
    rows = store._con.execute("SELECT count(*), min(source) FROM bars").fetchone()
    store.close()
    assert rows == (4, "user")


@pytest.mark.skipif(not SHARED.exists(), reason="shared reference data folder is absent")
def test_real_wti_series_keeps_good_days_and_rejects_the_negative_settlement() -> None:
    """EIA WTI spot is close-only: bars become O=H=L=C; 2020-04-20 (-36.98) is rejected."""
    result = load_user_bars(SHARED / "eia_wti_spot_daily.csv", symbol="WTI")
    assert result.close_only
    assert result.bars.height > 9000
    negative = [r for r in result.rejected if r.reason == "non-positive price"]
    assert any(r.line == 8645 for r in negative)
    first = result.bars.row(0, named=True)
    assert first["open"] == first["high"] == first["low"] == first["close"] == 25.56
    panel = to_panel(result.bars)
    assert panel.symbols == ("WTI",) and len(panel) == result.bars.height


@pytest.mark.skipif(not SHARED.exists(), reason="shared reference data folder is absent")
def test_real_henry_hub_missing_value_is_reported() -> None:
    result = load_user_bars(SHARED / "eia_henry_hub_spot_daily.csv", symbol="NG")
    assert any(r.reason == "missing or unparseable number" for r in result.rejected)


def test_a_split_the_file_is_not_adjusted_for_is_flagged_not_dropped(tmp_path: Path) -> None:
    """USO's 1-for-8 reverse split (2020-04-29) in an unadjusted file: the close jumps
    x8.2. The bar is kept (it may be real) and reported with the reason it matters;
    ordinary days and the other symbol are not flagged."""
    rows = [
        "Symbol,Date,Open,High,Low,Close,Volume",
        "USO,2020-04-27,2.10,2.20,2.00,2.05,100",
        "USO,2020-04-28,2.06,2.10,1.98,2.00,100",
        "USO,2020-04-29,16.00,16.60,15.80,16.40,100",
        "USO,2020-04-30,16.30,16.90,16.10,16.80,100",
        "GLD,2020-04-27,160,161,159,160.5,100",
        "GLD,2020-04-28,160,162,159,161.0,100",
    ]
    path = tmp_path / "raw.csv"
    path.write_text("\n".join(rows) + "\n")
    result = load_user_bars(path)
    assert result.bars.height == 6 and not result.rejected
    (jump,) = result.jumps
    assert (jump.symbol, str(jump.day), jump.previous, jump.close) == (
        "USO",
        "2020-04-29",
        2.0,
        16.4,
    )
    assert jump.ratio == pytest.approx(8.2)
    lines = summary_lines(result)
    assert (
        "warning: USO 2020-04-29 close 16.4 after 2 (x8.20): a split the file is not adjusted "
        "for, or a bad print? A backtest books it as a return"
    ) in lines
