from datetime import date, timedelta

import numpy as np
import pytest

from qgtm.core.enums import SignalDirection
from qgtm.engine.data.store import PricePanel
from qgtm.engine.strategies.registry import UnknownStrategyError, create
from qgtm.engine.strategies.tsmom import TimeSeriesMomentum


def _panel(closes: np.ndarray, symbols=("UP", "DOWN")) -> PricePanel:
    dates = tuple(date(2020, 1, 1) + timedelta(days=i) for i in range(len(closes)))
    volume = np.ones_like(closes)
    return PricePanel(dates, symbols, closes, closes, closes, closes, volume)


def _zigzag_trend(n: int, drift: float) -> np.ndarray:
    """Log price with a constant drift and an alternating +-1% wiggle (known vol)."""
    wiggle = np.where(np.arange(n) % 2 == 0, 0.01, -0.01)
    return 100 * np.exp(np.cumsum(drift + wiggle))


def test_rising_series_is_long_and_falling_series_is_short():
    closes = np.column_stack([_zigzag_trend(300, 0.001), _zigzag_trend(300, -0.001)])
    signals = TimeSeriesMomentum().generate(_panel(closes), date(2021, 1, 1))
    assert [s.side for s in signals] == [SignalDirection.LONG, SignalDirection.SHORT]


def test_weight_is_target_vol_over_realised_vol_by_hand():
    closes = np.column_stack([_zigzag_trend(300, 0.001), _zigzag_trend(300, -0.001)])
    signal = TimeSeriesMomentum(target_vol=0.10).generate(_panel(closes), date(2021, 1, 1))[0]
    # Daily log returns alternate 0.011 / -0.009 over a 63-day window: sample stdev ~0.01.
    window = np.diff(np.log(closes[-64:, 0]))
    expected = 0.10 / (window.std(ddof=1) * np.sqrt(252))
    assert signal.weight == pytest.approx(expected, rel=1e-12)
    assert signal.weight == pytest.approx(0.10 / (0.01 * np.sqrt(252)), rel=0.02)


def test_no_signal_before_the_warmup():
    closes = np.column_stack([_zigzag_trend(200, 0.001), _zigzag_trend(200, -0.001)])
    assert TimeSeriesMomentum().generate(_panel(closes), date(2021, 1, 1)) == []


def test_signals_up_to_t_ignore_whatever_comes_after_t():
    rng = np.random.default_rng(0)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (400, 2)), axis=0))
    altered = closes.copy()
    altered[350:] = 100 * np.exp(rng.normal(0, 0.5, (50, 2)))
    strategy = TimeSeriesMomentum()
    for t in range(300, 351):
        real = strategy.generate(_panel(closes).history_before(t), date(2021, 1, 1))
        noise = strategy.generate(_panel(altered).history_before(t), date(2021, 1, 1))
        assert real == noise


def test_parameters_outside_their_declared_range_are_refused():
    with pytest.raises(ValueError, match="lookback=10 outside its range"):
        TimeSeriesMomentum(lookback=10)


def test_whole_parameters_refuse_fractions_and_are_kept_as_ints():
    """A window is a count of sessions: 126.0 is 126, 126.5 is refused (never truncated)."""
    strategy = TimeSeriesMomentum(lookback=126.0, target_vol=0.25)
    assert strategy.params["lookback"] == 126 and isinstance(strategy.params["lookback"], int)
    assert isinstance(strategy.params["target_vol"], float)  # a float parameter stays one
    with pytest.raises(ValueError, match=r"lookback takes whole numbers, not 126\.5"):
        TimeSeriesMomentum(lookback=126.5)


def test_registry_names_unknown_strategies_clearly():
    with pytest.raises(UnknownStrategyError) as err:
        create("nope")
    assert "unknown strategy 'nope'; known: " in str(err.value)
    assert ", tsmom," in str(err.value)
