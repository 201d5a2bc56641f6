import numpy as np
import pytest
from scipy import stats

from qgtm.engine.learn.shadow import judge, paired_p_value


def test_paired_p_value_matches_the_t_statistic_by_hand():
    cand = np.array([0.010, 0.004, -0.002, 0.006, 0.003])
    prod = np.array([0.008, 0.001, -0.003, 0.002, 0.004])
    d = cand - prod  # [0.002, 0.003, 0.001, 0.004, -0.001]: mean 0.0018, sd 0.0019235
    t = d.mean() / (d.std(ddof=1) / np.sqrt(5))
    assert t == pytest.approx(2.0926, rel=1e-4)
    assert paired_p_value(cand, prod) == pytest.approx(stats.t.sf(t, df=4), rel=1e-9)


def test_a_clearly_better_candidate_passes():
    rng = np.random.default_rng(1)
    prod = rng.normal(0.0, 0.01, 250)
    cand = prod + 0.002 + rng.normal(0, 0.002, 250)
    verdict = judge(cand, prod, alpha=0.05)
    assert verdict.passed and verdict.p_value < 0.05


def test_a_better_sharpe_without_significance_fails():
    rng = np.random.default_rng(2)
    prod = rng.normal(0.0, 0.01, 20)
    cand = prod + rng.normal(0.0005, 0.01, 20)
    verdict = judge(cand, prod, alpha=0.05)
    assert not verdict.passed
