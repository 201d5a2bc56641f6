"""Security page statistics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from qgtm.tui.screens.security import horizon_return, realised_vol


def test_horizon_return_compares_with_the_close_n_sessions_ago() -> None:
    closes = [100.0, 110.0, 99.0, 121.0]
    assert horizon_return(closes, 1) == pytest.approx(121 / 99 - 1)
    assert horizon_return(closes, 3) == pytest.approx(0.21)
    assert horizon_return(closes, 4) is None


def test_realised_vol_is_the_annualised_sample_stdev_of_log_returns() -> None:
    closes = [100.0, 101.0, 99.0, 102.0]
    logs = [math.log(101 / 100), math.log(99 / 101), math.log(102 / 99)]
    mean = sum(logs) / 3
    expected = math.sqrt(sum((x - mean) ** 2 for x in logs) / 2) * math.sqrt(252)
    assert realised_vol(closes, 3) == pytest.approx(expected)
    assert realised_vol(closes, 4) is None
