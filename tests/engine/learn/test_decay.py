import numpy as np
import pytest

from qgtm.core.config import LearnConfig
from qgtm.engine.backtest.stats import sharpe_ratio
from qgtm.engine.learn.decay import DecayStatus, assess, exposure_drift

CONFIG = LearnConfig(
    window=4,
    warning_sharpe=0.0,
    decayed_sharpe=-1.0,
    warning_hit_rate=0.5,
    decayed_hit_rate=0.25,
    warning_exposure_drift=1.0,
    decayed_exposure_drift=1.5,
)


def test_sharpe_by_hand():
    # mean 0.01, sample stdev of [0.02, 0, 0.02, 0] = 0.011547; * sqrt(252)
    returns = np.array([0.02, 0.0, 0.02, 0.0])
    assert sharpe_ratio(returns) == pytest.approx(0.01 / 0.0115470054 * 15.8745079, rel=1e-6)


def test_exposure_drift_is_distance_between_declared_and_realised_correlation():
    factor = np.array([0.01, -0.02, 0.015, -0.005, 0.0])
    assert exposure_drift(factor, {"trend": 1.0}, {"trend": factor}) == pytest.approx(0.0)
    assert exposure_drift(-factor, {"trend": 1.0}, {"trend": factor}) == pytest.approx(2.0)
    assert exposure_drift(factor, {"carry": 1.0}, {"trend": factor}) == 0.0  # no proxy


def test_profitable_consistent_strategy_is_healthy():
    report = assess("s", np.array([0.01, 0.02, 0.01, -0.005]), {}, {}, CONFIG)
    assert report.status is DecayStatus.HEALTHY


def test_slightly_losing_strategy_is_a_warning():
    # mean -0.0005, sample sd 0.012124 -> Sharpe -0.0005 / 0.012124 * 15.87 = -0.65:
    # below 0 (warning) but above -1 (decayed); hit rate 0.5 is not below 0.5.
    report = assess("s", np.array([0.01, -0.011, 0.01, -0.011]), {}, {}, CONFIG)
    assert report.rolling_sharpe == pytest.approx(-0.6547, abs=1e-3)
    assert report.status is DecayStatus.WARNING
    assert report.reasons[0].startswith("Sharpe")


def test_steadily_losing_strategy_is_decayed():
    report = assess("s", np.array([-0.01, -0.02, 0.001, -0.015]), {}, {}, CONFIG)
    assert report.status is DecayStatus.DECAYED


def test_short_history_is_healthy_while_warming_up():
    report = assess("s", np.array([-0.01, -0.02]), {}, {}, CONFIG)
    assert report.status is DecayStatus.HEALTHY
    assert report.reasons == ("warming up",)
