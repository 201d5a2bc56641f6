"""Adaptive leverage and the no-trade band."""

from __future__ import annotations

import pytest

from qgtm.engine.portfolio.leverage import adaptive_leverage, apply_no_trade_band


def _lev(drawdown: float) -> float:
    return adaptive_leverage(drawdown, 1.0, 0.25, 0.05, 0.20)


def test_full_leverage_until_dampening_starts():
    assert _lev(0.0) == 1.0
    assert _lev(0.05) == 1.0


def test_leverage_falls_linearly_with_drawdown_to_the_floor():
    # halfway between 5% and 20% drawdown: 1.0 - 0.5 * 0.75
    assert _lev(0.125) == pytest.approx(0.625)
    assert _lev(0.20) == 0.25
    assert _lev(0.60) == 0.25


def test_leverage_comes_back_as_the_drawdown_recovers():
    assert _lev(0.15) < _lev(0.10) < _lev(0.06) < _lev(0.0)


def test_bad_leverage_bounds_are_refused():
    with pytest.raises(ValueError, match="leverage bounds"):
        adaptive_leverage(0.1, 0.5, 1.0, 0.05, 0.2)
    with pytest.raises(ValueError, match="dampening"):
        adaptive_leverage(0.1, 1.0, 0.5, 0.2, 0.1)


def test_no_trade_band_keeps_small_changes_and_trades_large_ones():
    result = apply_no_trade_band(
        {"GLD": 0.104, "SLV": 0.15, "USO": 0.0}, {"GLD": 0.10, "SLV": 0.10, "USO": 0.001}, 0.01
    )
    assert result["GLD"] == 0.10  # 0.4 pp move stays put
    assert result["SLV"] == 0.15  # 5 pp move trades
    assert result["USO"] == 0.0  # exits are never swallowed by the band


def test_new_small_position_inside_the_band_is_not_opened():
    assert apply_no_trade_band({"GLD": 0.004}, {}, 0.005) == {"GLD": 0.0}
