"""Transforms against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from qgtm.engine.features import transforms as tf


def test_drawdown_by_hand():
    close = np.array([100.0, 110.0, 99.0, 121.0])
    np.testing.assert_allclose(tf.drawdown(close), [0.0, 0.0, -0.1, 0.0])


def test_horizon_return_skips_recent_sessions():
    close = np.exp(np.array([0.0, 0.1, 0.3, 0.6, 1.0]))
    # ln P[t-1] - ln P[t-3] at t = 4: 0.6 - 0.1
    assert tf.horizon_return(close, 3, skip=1)[-1] == pytest.approx(0.5)


def test_rsi_of_wilders_smoothing_by_hand():
    # changes +1, -1, +2 with period 2 (a = 1/2): gains e = 1, 0.5, 1.25; losses 0, 0.5, 0.25
    close = np.array([10.0, 11.0, 10.0, 12.0])
    assert tf.rsi(close, 2)[-1] == pytest.approx(100 - 100 / (1 + 1.25 / 0.25))


def test_efficiency_ratio_is_one_on_a_line_and_low_in_a_range():
    assert tf.efficiency_ratio(np.arange(1.0, 12.0), 10)[-1] == pytest.approx(1.0)
    zigzag = np.array([1.0, 2.0] * 6)
    assert tf.efficiency_ratio(zigzag, 10)[-1] == pytest.approx(0.0)


def test_ewma_vol_follows_the_riskmetrics_recursion():
    close = np.exp(np.cumsum([0.0, 0.01, -0.02, 0.03]))
    # s2 starts at r1^2 (first value) then s2 = 0.94 s2 + 0.06 r^2
    s2 = 0.0
    for i, r in enumerate([0.0, 0.01, -0.02, 0.03]):
        s2 = r * r if i == 0 else 0.94 * s2 + 0.06 * r * r
    assert tf.ewma_vol(close)[-1] == pytest.approx(np.sqrt(s2 * 252))


def test_average_correlation_of_identical_and_opposite_series():
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.01, 40)
    same = np.exp(np.cumsum(np.column_stack([r, r]), axis=0))
    opposite = np.exp(np.cumsum(np.column_stack([r, -r]), axis=0))
    assert tf.rolling_average_correlation(same, 21)[-1] == pytest.approx(1.0)
    assert tf.rolling_average_correlation(opposite, 21)[-1] == pytest.approx(-1.0)
    assert tf.rolling_weighted_correlation(same, 21)[-1] == pytest.approx(1.0)
    assert tf.rolling_weighted_correlation(opposite, 21)[-1] == pytest.approx(-1.0)


def test_term_structure_proxy_is_the_change_in_the_log_ratio():
    front = np.array([50.0, 50.0, 45.0])
    deferred = np.array([40.0, 40.0, 40.0])
    assert tf.term_structure_proxy(front, deferred, 2)[-1] == pytest.approx(np.log(0.9))


def test_rolling_hedge_ratio_recovers_an_exact_slope():
    b = np.log(np.array([10.0, 11.0, 12.5, 12.0, 13.0]))
    a = 0.3 + 1.7 * b
    assert tf.rolling_hedge_ratio(a, b, 4)[-1] == pytest.approx(1.7)
