from datetime import date

from qgtm.core.enums import SignalDirection
from qgtm.core.types import Signal
from qgtm.engine.portfolio.allocator import inverse_vol_weights

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
