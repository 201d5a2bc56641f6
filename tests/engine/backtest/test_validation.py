"""Validation statistics against the papers' worked examples and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qgtm.engine.backtest.validation import (
    cross_validate,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    min_track_record_length,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    purged_kfold,
    sharpe_moments,
    short_window_warning,
    walk_forward,
    walk_forward_splits,
)


def test_deflated_sharpe_matches_the_papers_numerical_example() -> None:
    """Bailey & Lopez de Prado (2014), section 5: N = 100 trials, V[SR] = 0.5 annualised
    (0.5/250 daily), best SR 2.5 annualised over T = 1250 days, skew -3, kurtosis 10.
    The paper reports SR0 = 0.1132 (daily) and DSR = 0.9004."""
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_ratio(2.5 / math.sqrt(250), 1250, -3.0, 10.0, 100, 0.5 / 250)
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_psr_by_hand() -> None:
    """SR = 0.1 per day, n = 253, normal returns (skew 0, kurtosis 3), SR* = 0:
    z = 0.1 * sqrt(252) / sqrt(1 + (3 - 1)/4 * 0.01) = 1.587401 / 1.002497 = 1.583497,
    Phi(1.583497) = 0.943346."""
    assert probabilistic_sharpe_ratio(0.1, 253, 0.0, 3.0) == pytest.approx(0.943346, abs=1e-6)


def test_psr_penalises_negative_skew_and_fat_tails() -> None:
    normal = probabilistic_sharpe_ratio(0.1, 253, 0.0, 3.0)
    assert probabilistic_sharpe_ratio(0.1, 253, -2.0, 9.0) < normal


def test_min_track_record_length_by_hand() -> None:
    """SR 0.1, normal, SR* 0, alpha 5%: 1 + 1.005 * (1.644854 / 0.1)^2 = 272.907."""
    assert min_track_record_length(0.1, 0.0, 3.0) == pytest.approx(272.907, abs=1e-3)
    assert min_track_record_length(0.0, 0.0, 3.0) == math.inf


def test_sharpe_moments_by_hand() -> None:
    """r = [1, 2, 3, 6]: mean 3, m2 = (4+1+0+9)/4 = 3.5, sd(ddof 1) = sqrt(14/3),
    m3 = (-8-1+0+27)/4 = 4.5 -> skew 4.5/3.5^1.5; m4 = (16+1+0+81)/4 = 24.5 -> 24.5/12.25 = 2."""
    got = sharpe_moments(np.array([1.0, 2.0, 3.0, 6.0]))
    assert got.sharpe == pytest.approx(3 / math.sqrt(14 / 3))
    assert got.skew == pytest.approx(4.5 / 3.5**1.5)
    assert got.kurtosis == pytest.approx(2.0)


# Two configurations over 4 sessions; with S = 4 blocks of one session and the mean as the
# metric, every one of the C(4,2) = 6 in-sample choices picks the configuration that then
# loses out of sample:
#   IS {0,1}: A 2.0 > B 1.0, OOS {2,3}: A 1.0 < B 1.25   IS {1,2}: B 1.5 > A 0.5, OOS A wins
#   IS {0,2}: A 1.5 > B 0.5, OOS {1,3}: A 1.5 < B 1.75   IS {1,3}: B 1.75 > A 1.5, OOS A wins
#   IS {0,3}: A 2.5 > B 0.75, OOS {1,2}: A 0.5 < B 1.5   IS {2,3}: B 1.25 > A 1.0, OOS A wins
# so the IS winner always ranks 1 of 2 OOS: w = 1/3, logit = ln(1/2) and PBO = 1.
A = [3.0, 1.0, 0.0, 2.0]
B = [0.0, 2.0, 1.0, 1.5]


def _mean(block: np.ndarray) -> np.ndarray:
    return block.mean(axis=0)


def test_pbo_is_one_when_the_in_sample_winner_always_loses() -> None:
    result = probability_of_backtest_overfitting(np.array([A, B]).T, n_splits=4, metric=_mean)
    assert result.pbo == 1.0
    assert result.logits == pytest.approx([math.log(0.5)] * 6)


def test_pbo_is_zero_when_one_configuration_dominates() -> None:
    """Add C = 5 everywhere: C wins IS and OOS every time, rank 3 of 3: w = 3/4, logit ln 3."""
    matrix = np.array([A, B, [5.0] * 4]).T
    result = probability_of_backtest_overfitting(matrix, n_splits=4, metric=_mean)
    assert result.pbo == 0.0
    assert result.logits == pytest.approx([math.log(3)] * 6)


def test_pbo_of_pure_noise_is_near_one_half_on_average() -> None:
    """Without skill the IS winner's OOS rank is uniform: E[PBO] = 1/2 (one draw varies
    a lot because the 70 splits share the same data, so average 20 draws)."""
    draws = [
        probability_of_backtest_overfitting(
            np.random.default_rng(seed).normal(size=(400, 20)), n_splits=8
        ).pbo
        for seed in range(20)
    ]
    assert 0.4 < float(np.mean(draws)) < 0.65


def test_purged_kfold_by_hand() -> None:
    """n = 10, k = 2, labels span [i, i+1], embargo 2.
    Fold 1 tests 0..4, label span [0, 5]: purge 5 (its label [5,6] meets 5), embargo 6, 7.
    Fold 2 tests 5..9, label span [5, 10]: purge 4 ([4,5] meets 5); nothing after."""
    (train1, test1), (train2, test2) = purged_kfold(10, 2, label_horizon=1, embargo=2)
    assert test1.tolist() == [0, 1, 2, 3, 4] and train1.tolist() == [8, 9]
    assert test2.tolist() == [5, 6, 7, 8, 9] and train2.tolist() == [0, 1, 2, 3]


def test_walk_forward_windows_rolling_and_anchored() -> None:
    rolling = walk_forward_splits(10, train=4, test=2)
    assert [(list(a), list(b)) for a, b in rolling] == [
        ([0, 1, 2, 3], [4, 5]),
        ([2, 3, 4, 5], [6, 7]),
        ([4, 5, 6, 7], [8, 9]),
    ]
    anchored = walk_forward_splits(10, train=4, test=2, anchored=True)
    assert [(a.start, a.stop) for a, _ in anchored] == [(0, 4), (0, 6), (0, 8)]


def test_walk_forward_stitches_the_in_sample_winner_out_of_sample() -> None:
    """Config 0 shines in sessions 0..5, config 1 afterwards. Rolling 4/2:
    fold 1 trains 0..3 -> picks 0, tests 4,5; fold 2 trains 2..5 -> 0; fold 3 trains 4..7:
    2 sessions each, config 1's Sharpe higher -> 1, tests 8, 9."""
    good = [0.01, 0.02, 0.01, 0.02, 0.01, 0.02]
    bad = [-0.01, 0.0, -0.01, 0.0, -0.01, 0.0]
    c0 = good + bad[:4]
    c1 = bad + good[:4]
    result = walk_forward(np.array([c0, c1]).T, train=4, test=2)
    assert result.chosen == (0, 0, 1)
    assert result.oos_index.tolist() == [4, 5, 6, 7, 8, 9]
    assert result.oos_returns.tolist() == [c0[4], c0[5], c0[6], c0[7], c1[8], c1[9]]


@pytest.mark.parametrize("seed", range(12))
def test_pbo_from_block_moments_equals_the_row_by_row_sharpes(seed: int) -> None:
    """The Sharpe metric's fast path (per-block sums, one product for all splits) gives
    the same logit in every split as the metric run on each split's gathered rows,
    including configurations with identical returns (ties) and a flat one."""
    from qgtm.engine.backtest.validation import _sharpe_columns

    rng = np.random.default_rng(seed)
    rows, configs = int(rng.integers(40, 1500)), int(rng.integers(2, 9))
    matrix = rng.normal(
        rng.normal(0, 0.0005, configs), rng.uniform(0.003, 0.03, configs), (rows, configs)
    )
    matrix[:, 1] = matrix[:, 0]
    matrix[:, -1] = 0.0
    splits = [2, 4, 8, 16][seed % 4]
    fast = probability_of_backtest_overfitting(matrix, splits)
    row_by_row = probability_of_backtest_overfitting(
        matrix, splits, metric=lambda block: _sharpe_columns(block)
    )
    assert fast.logits == row_by_row.logits
    assert fast.pbo == row_by_row.pbo


def test_cross_validation_picks_on_purged_training_sessions_by_hand() -> None:
    """Config A earns in sessions 0..3 and loses in 4..7, config B the reverse. k = 2:
    fold 1 tests 0..3 and trains on 4..7 -> B, whose test returns are B's losing half;
    fold 2 trains on 0..3 -> A, tested on A's losing half. The stitched out-of-sample
    returns are both losing halves: the rule picks yesterday's winner, CV shows it.
    Each losing half [-0.01, 0, -0.01, 0]: mean -0.005, sd sqrt(4 * 0.005^2 / 3) =
    0.0057735 -> daily Sharpe -0.8660."""
    good, bad = [0.01, 0.02, 0.01, 0.02], [-0.01, 0.0, -0.01, 0.0]
    result = cross_validate(np.array([good + bad, bad + good]).T, k=2)
    assert result.chosen == (1, 0)
    assert result.oos_returns.tolist() == bad + bad
    assert result.fold_sharpes == pytest.approx((-0.8660254, -0.8660254))


def test_cross_validation_purging_and_embargo_change_the_choice() -> None:
    """n = 10, k = 2, labels [i, i+1], embargo 2: fold 1 trains only on 8, 9 (see
    test_purged_kfold_by_hand). Config 0 earns 5% in 5..7 and loses a little in 8, 9;
    config 1 earns in 8, 9. Unpurged, fold 1 trains on 5..9: config 0's Sharpe
    0.0294 / 0.0282 = 1.04 beats config 1's 0.0064 / 0.0086 = 0.74 -> 0. Purged and
    embargoed, sessions 5..7 (next to the test fold) are out: 8, 9 alone -> 1."""
    c0 = [0.0, 0.001, 0.0, 0.001, 0.0, 0.05, 0.05, 0.05, -0.001, -0.002]
    c1 = [0.01, 0.02, 0.01, 0.02, 0.0, 0.001, 0.0, 0.001, 0.01, 0.02]
    matrix = np.array([c0, c1]).T
    assert cross_validate(matrix, k=2).chosen[0] == 0
    purged = cross_validate(matrix, k=2, embargo=2, label_horizon=1)
    assert purged.chosen == (1, 1)
    assert purged.oos_returns.tolist() == c1
    with pytest.raises(ValueError, match="training sessions left after purging"):
        cross_validate(matrix, k=2, embargo=8, label_horizon=1)


def test_a_window_under_a_year_is_warned_with_the_sharpes_standard_error() -> None:
    """sqrt(252 / 63) = 2.0: a quarter of daily returns pins an annual Sharpe to +/-2."""
    warning = short_window_warning(63)
    assert warning is not None
    assert "63 sessions < 252" in warning and "+/-2.0" in warning
    assert short_window_warning(252) is None
