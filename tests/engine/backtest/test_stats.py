"""The standard report against a four-session equity curve worked by hand."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest

from qgtm.engine.backtest.result import BacktestResult
from qgtm.engine.backtest.stats import (
    annual_turnover,
    compact_percent,
    drawdown,
    monthly_rows,
    report,
    sector_exposure,
)

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
