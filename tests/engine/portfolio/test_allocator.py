from datetime import date

import numpy as np
import pytest

from qgtm.core.enums import SignalDirection
from qgtm.core.types import Signal
from qgtm.engine.portfolio.allocator import AllocationSettings, allocate, inverse_vol_weights

D = date(2024, 1, 2)


def _sig(symbol: str, side: SignalDirection) -> Signal:
    return Signal(symbol, side, 1.0, 0.5, "tsmom", D)


def test_weights_are_inverse_vol_shares_of_the_gross_target_with_signal_signs():
    signals = [_sig("GLD", SignalDirection.LONG), _sig("UNG", SignalDirection.SHORT)]
    weights = inverse_vol_weights(signals, {"GLD": 0.15, "UNG": 0.45}, gross_target=1.0)
    # 1/0.15 : 1/0.45 = 3 : 1
    assert abs(weights["GLD"] - 0.75) < 1e-12
    assert abs(weights["UNG"] + 0.25) < 1e-12


def test_flat_signals_and_missing_vols_take_no_weight():
    signals = [_sig("GLD", SignalDirection.FLAT), _sig("SLV", SignalDirection.LONG)]
    assert inverse_vol_weights(signals, {"GLD": 0.15}, 1.0) == {}


# ----- multi-strategy allocation -------------------------------------------------------
SYMBOLS = ("GLD", "SLV", "USO")


def _history(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, size=(300, 3)) * np.array([0.01, 0.02, 0.04])


def _strategy_sig(symbol: str, side: SignalDirection, strategy: str) -> Signal:
    return Signal(symbol, side, 1.0, 0.5, strategy, D)


def test_allocate_gives_each_strategy_an_equal_share_of_the_gross_budget():
    signals = {
        "a": [_strategy_sig("GLD", SignalDirection.LONG, "a")],
        "b": [_strategy_sig("USO", SignalDirection.SHORT, "b")],
    }
    settings = AllocationSettings(method="equal", gross_target=0.6, no_trade_band=0.0)
    result = allocate(signals, _history(), SYMBOLS, {}, 0.0, settings)
    assert result.targets == pytest.approx({"GLD": 0.3, "USO": -0.3})
    assert result.sleeves["a"] == pytest.approx({"GLD": 0.3})
    assert result.leverage == 1.0


def test_allocate_nets_opposite_views_of_two_strategies():
    signals = {
        "a": [_strategy_sig("GLD", SignalDirection.LONG, "a")],
        "b": [_strategy_sig("GLD", SignalDirection.SHORT, "b")],
    }
    settings = AllocationSettings(method="hrp", gross_target=0.6, no_trade_band=0.0)
    assert allocate(signals, _history(), SYMBOLS, {}, 0.0, settings).targets == {}


def test_allocate_uses_the_configured_scheme_inside_a_sleeve():
    signals = {"a": [_strategy_sig(s, SignalDirection.LONG, "a") for s in SYMBOLS]}
    settings = AllocationSettings(method="inverse_vol", gross_target=1.0, no_trade_band=0.0)
    history = _history()
    result = allocate(signals, history, SYMBOLS, {}, 0.0, settings)
    inverse = 1 / history.std(axis=0, ddof=1)
    expected = inverse / inverse.sum()
    assert [result.targets[s] for s in SYMBOLS] == pytest.approx(list(expected))


def test_allocate_dampens_leverage_in_a_drawdown():
    signals = {"a": [_strategy_sig("GLD", SignalDirection.LONG, "a")]}
    settings = AllocationSettings(method="equal", gross_target=0.6, no_trade_band=0.0)
    deep = allocate(signals, _history(), SYMBOLS, {}, 0.30, settings)
    assert deep.leverage == settings.min_leverage
    assert deep.targets["GLD"] == pytest.approx(0.6 * settings.min_leverage)


def test_allocate_rejects_an_unknown_method():
    signals = {"a": [_strategy_sig("GLD", SignalDirection.LONG, "a")]}
    with pytest.raises(ValueError, match="unknown allocation method"):
        allocate(signals, _history(), SYMBOLS, {}, 0.0, AllocationSettings(method="magic"))


def test_the_realised_vol_matrix_is_realised_vols_row_by_row_bit_for_bit():
    """Row i of realised_vol_matrix equals realised_vols(closes[:i]) exactly (a backtest
    looks rows up instead of recomputing, and share rounding must not move), through
    the first sessions, the 63-session window and a symbol listed later (NaN closes)."""
    from qgtm.engine.portfolio.allocator import realised_vol_matrix, realised_vols

    rng = np.random.default_rng(5)
    closes = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (200, 3)), axis=0))
    closes[:90, 2] = np.nan  # listed on session 90
    matrix = realised_vol_matrix(closes)
    symbols = ("A", "B", "C")
    assert np.isnan(matrix[:3]).all()
    for i in range(3, len(closes)):
        expected = realised_vols(closes[:i], symbols)
        got = matrix[i]
        for j, s in enumerate(symbols):
            assert (np.isnan(got[j]) and np.isnan(expected[s])) or got[j] == expected[s], (i, s)
    assert np.isfinite(matrix[90 + 65, 2]) and np.isnan(matrix[150, 2])
