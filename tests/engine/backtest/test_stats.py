"""The standard report against a four-session equity curve worked by hand."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date
from decimal import Decimal

import numpy as np
import pytest

from qgtm.core.backtest import BacktestError, compact_percent, monthly_rows
from qgtm.engine.backtest.result import BacktestResult, Trade
from qgtm.engine.backtest.stats import (
    EQUAL_WEIGHT,
    annual_turnover,
    benchmark_returns,
    drawdown,
    kill_switch_spells,
    kill_switch_text,
    relative_stats,
    report,
    round_trips,
    sector_exposure,
    trade_stats,
)
from qgtm.engine.data.store import PricePanel

DATES = (date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 1), date(2024, 2, 2))
EQUITY = np.array([110.0, 99.0, 99.0, 121.0])  # from an initial 100


def _result() -> BacktestResult:
    return BacktestResult(
        dates=DATES,
        symbols=("GLD",),
        equity=EQUITY,
        cash=EQUITY,
        positions=np.zeros((4, 1), dtype=np.int64),
        closes=np.ones((4, 1)),
        trades=[],
        kill_tiers=["NORMAL"] * 4,
        meta={"initial_cash": "100"},
    )


def test_report_matches_the_hand_computation() -> None:
    """r = [0.1, -0.1, 0, 2/9].
    mean = (0.1 - 0.1 + 0 + 0.222222)/4 = 0.0555556
    deviations 0.0444444, -0.1555556, -0.0555556, 0.1666667; squares sum 0.0570370;
    sd = sqrt(0.0570370/3) = 0.1378853 -> Sharpe = 0.0555556/0.1378853*sqrt(252) = 6.39596
    downside = sqrt((0 + 0.01 + 0 + 0)/4) = 0.05 -> Sortino = 0.0555556/0.05*sqrt(252) = 17.6383
    vol = 0.1378853*sqrt(252) = 2.18886; CAGR = 1.21^(252/4) - 1 = 1.21^63 - 1
    curve 100,110,99,99,121: peaks 100,110,110,110,121 -> max DD 10%, 2 sessions below
    hit rate 2 up of 3 moves; Calmar = CAGR / 0.10
    months: Jan 1.1*0.9 - 1 = -0.01, Feb 1.0*(121/99) - 1 = 0.222222
    """
    stats = report(_result())
    assert stats.sharpe == pytest.approx(6.39596, rel=1e-5)
    assert stats.sortino == pytest.approx(17.6383, rel=1e-5)
    assert stats.volatility == pytest.approx(2.18886, rel=1e-5)
    assert stats.cagr == pytest.approx(1.21**63 - 1, rel=1e-12)
    assert stats.max_drawdown == pytest.approx(0.10)
    assert stats.max_drawdown_sessions == 2
    assert stats.hit_rate == pytest.approx(2 / 3)
    assert stats.calmar == pytest.approx((1.21**63 - 1) / 0.10)
    assert stats.total_return == pytest.approx(0.21)
    assert stats.monthly_returns[2024][1] == pytest.approx(-0.01)
    assert stats.monthly_returns[2024][2] == pytest.approx(121 / 99 - 1)


def test_drawdown_duration_counts_the_longest_spell_below_the_peak() -> None:
    """100 -> 90 -> 95 -> 101 -> 100 -> 102: spells of 2 and 1 sessions; depth 10%."""
    dd = drawdown(np.array([90.0, 95.0, 101.0, 100.0, 102.0]), 100.0)
    assert dd.max_drawdown == pytest.approx(0.10)
    assert dd.max_duration == 2


def test_turnover_is_annualised_traded_value_over_equity() -> None:
    """Trades 100, 0, 50, 0 on equity 100: mean 0.375 a session * 252 = 94.5x a year."""
    traded = np.array([100.0, 0.0, 50.0, 0.0])
    assert annual_turnover(traded, np.full(4, 100.0)) == pytest.approx(94.5)


def test_sector_exposure_averages_gross_weights() -> None:
    """GLD |0.5|, |0.3| -> 0.4 metals; USO |-0.2|, 0 -> 0.1 energy."""
    weights = np.array([[0.5, -0.2], [0.3, 0.0]])
    got = sector_exposure(weights, ("GLD", "USO"), {"GLD": "metals", "USO": "energy"})
    assert got == {"energy": pytest.approx(0.1), "metals": pytest.approx(0.4)}
    assert not math.isnan(sum(got.values()))


def test_monthly_rows_compound_each_year_from_its_months() -> None:
    """2024: Jan -1%, Feb +22.2222% -> year 0.99 * 1.222222 - 1 = 0.21 (the curve's 100 -> 121);
    2025: Mar +5% alone -> year 5%; missing months are None. JSON keys (strings) read the same."""
    stats = report(_result())
    monthly = {**stats.monthly_returns, 2025: {3: 0.05}}
    rows = monthly_rows(monthly)
    assert [year for year, _ in rows] == [2024, 2025]
    jan, feb, *rest, year = rows[0][1]
    assert (jan, feb) == (pytest.approx(-0.01), pytest.approx(121 / 99 - 1))
    assert rest == [None] * 10
    assert year == pytest.approx(0.21)
    assert rows[1][1][2] == pytest.approx(0.05) and rows[1][1][12] == pytest.approx(0.05)
    as_json = {str(y): {str(m): r for m, r in v.items()} for y, v in monthly.items()}
    assert monthly_rows(as_json) == rows


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (0.0, "0.0"),
        (-0.0042, "-0.4"),
        (0.0994, "9.9"),
        (0.0996, "10"),
        (-0.1234, "-12"),
        (-1.0, "-100"),
        (2.5, "250"),
    ],
)
def test_compact_percent_fits_four_characters(value: float | None, text: str) -> None:
    assert compact_percent(value) == text
    assert len(compact_percent(value)) <= 4


def test_relative_stats_match_the_hand_computation() -> None:
    """r = [0.01, -0.02, 0.03] (mean 2/300), b = [0.02, -0.01, 0] (mean 1/300).
    Sums of products of deviations (x 30000): r.r 38, b.b 14, r.b 10.
    beta = 10/14 = 0.7142857; alpha = (2/300 - (5/7)(1/300)) * 252 = 1.08;
    correlation = 10 / sqrt(38 * 14) = 0.4335550;
    r - b = [-0.01, -0.01, 0.03]: mean 1/300, sd sqrt(0.0010667 / 2) = 0.0230940,
    tracking error 0.0230940 * sqrt(252) = 0.3666061, information ratio
    (1/300 * 252) / 0.3666061 = 2.2912878; benchmark: growth 1.02 * 0.99 = 1.0098,
    CAGR 1.0098^84 - 1, Sharpe (1/300) / sqrt(14/60000) * sqrt(252) = 3.4641016."""
    got = relative_stats(np.array([0.01, -0.02, 0.03]), np.array([0.02, -0.01, 0.0]))
    assert got["beta"] == pytest.approx(10 / 14, rel=1e-9)
    assert got["alpha"] == pytest.approx(1.08, rel=1e-9)
    assert got["correlation"] == pytest.approx(0.4335550, rel=1e-6)
    assert got["tracking_error"] == pytest.approx(0.3666061, rel=1e-6)
    assert got["information_ratio"] == pytest.approx(2.2912878, rel=1e-6)
    assert got["benchmark_cagr"] == pytest.approx(1.0098**84 - 1, rel=1e-9)
    assert got["benchmark_sharpe"] == pytest.approx(3.4641016, rel=1e-6)


def test_benchmark_returns_of_one_symbol_or_equal_weights() -> None:
    """Closes A 10, 11, 11, 12.1 and B 20, 20, 22, 22: A returns 10%, 0, 10%; B 0, 10%, 0;
    equal weights rebalanced daily: 5% each day. A run starting on the first session has
    no close before it: its first benchmark return is 0."""
    days = tuple(date(2024, 1, d) for d in (2, 3, 4, 5))
    closes = np.array([[10.0, 20.0], [11.0, 20.0], [11.0, 22.0], [12.1, 22.0]])
    panel = PricePanel(days, ("A", "B"), closes, closes, closes, closes, np.ones((4, 2)))
    assert benchmark_returns(panel, days[1:], "A") == pytest.approx([0.1, 0.0, 0.1])
    assert benchmark_returns(panel, days[1:], "B") == pytest.approx([0.0, 0.1, 0.0])
    assert benchmark_returns(panel, days[1:], EQUAL_WEIGHT) == pytest.approx([0.05] * 3)
    assert benchmark_returns(panel, days, "A") == pytest.approx([0.0, 0.1, 0.0, 0.1])
    with pytest.raises(
        BacktestError, match="unknown benchmark 'C': use equal, none or one of A, B"
    ):
        benchmark_returns(panel, days, "C")


def test_round_trips_match_fifo_lots_by_hand() -> None:
    """Buy 10 @ 100 (fee 1), buy 10 @ 110 (fee 1), sell 15 @ 120 (fee 1.5), sell 5 @ 90
    (fee 0.5); short 10 @ 50 (fee 0.5), cover 10 @ 40 (fee 0.5). FIFO:
    lot 1 closes 10 @ 120: 10 * 20 - (1 + 1) = 198, held 2 sessions;
    lot 2 closes 5 @ 120: 5 * 10 - (0.5 + 0.5) = 49, held 1; its last 5 @ 90:
    5 * -20 - (0.5 + 0.5) = -101, held 2; the short: -10 * (40 - 50) - 1 = 99, held 1.
    Win rate 3/4, average win 346/3, average loss -101, profit factor 346/101,
    mean sessions held 6/4."""
    days = [date(2024, 1, d) for d in (2, 3, 4, 5, 8)]
    trades = [
        Trade(days[0], "A", 10, Decimal("100"), Decimal("1")),
        Trade(days[1], "A", 10, Decimal("110"), Decimal("1")),
        Trade(days[2], "A", -15, Decimal("120"), Decimal("1.5")),
        Trade(days[3], "A", -5, Decimal("90"), Decimal("0.5")),
        Trade(days[3], "B", -10, Decimal("50"), Decimal("0.5")),
        Trade(days[4], "B", 10, Decimal("40"), Decimal("0.5")),
    ]
    trips = round_trips(trades, days)
    assert [(t.symbol, t.quantity, t.pnl, t.sessions) for t in trips] == [
        ("A", 10, Decimal("198"), 2),
        ("A", 5, Decimal("49"), 1),
        ("A", 5, Decimal("-101"), 2),
        ("B", -10, Decimal("99"), 1),
    ]
    got = trade_stats(trips)
    assert got["round_trips"] == 4 and got["trip_win_rate"] == 0.75
    assert got["average_win"] == pytest.approx(346 / 3)
    assert got["average_loss"] == pytest.approx(-101)
    assert got["profit_factor"] == pytest.approx(346 / 101)
    assert got["average_sessions_held"] == 1.5
    # a flip: long 5 then sell 8 closes the 5 and opens a 3-share short
    flip = round_trips(
        [
            Trade(days[0], "C", 5, Decimal("10"), Decimal(0)),
            Trade(days[1], "C", -8, Decimal("12"), Decimal(0)),
            Trade(days[2], "C", 3, Decimal("11"), Decimal(0)),
        ],
        days,
    )
    assert [(t.quantity, t.pnl) for t in flip] == [(5, Decimal("10")), (-3, Decimal("3"))]
    assert trade_stats([]) == {"round_trips": 0}


def test_kill_switch_spells_count_each_tier_from_the_day_it_was_entered() -> None:
    """Tiers at the closes: NORMAL, WARN, WARN, FLATTEN -> WARN 2 sessions from the 2nd
    session, FLATTEN 1 from the 4th; the worst is named on the report."""
    tiers = ["NORMAL", "WARN", "WARN", "FLATTEN"]
    spells = kill_switch_spells(DATES, tiers)
    assert spells == {
        "WARN": {"sessions": 2, "first": DATES[1].isoformat()},
        "FLATTEN": {"sessions": 1, "first": DATES[3].isoformat()},
    }
    assert kill_switch_text(spells) == f"FLATTEN from {DATES[3].isoformat()} (1 session)"
    tripped = replace(_result(), kill_tiers=tiers, meta={"initial_cash": "100"})
    assert report(tripped).kill_spells == spells
    assert report(tripped).kill_switch == kill_switch_text(spells)
    assert report(_result()).kill_switch == "not tripped"
    off = replace(_result(), meta={"initial_cash": "100", "kill_switch": False})
    assert report(off).kill_switch == "off"
