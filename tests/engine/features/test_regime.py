from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from itertools import pairwise

import numpy as np
import pytest

from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.regime import (
    CRISIS,
    MEAN_REVERTING,
    TRENDING,
    MarkovFit,
    RegimeDetector,
    confirmed_label,
    hamilton_filter,
)


def _panel(log_returns: np.ndarray) -> PricePanel:
    closes = 50 * np.exp(np.cumsum(log_returns, axis=0))
    dates = tuple(date(2015, 1, 1) + timedelta(days=i) for i in range(len(closes)))
    return PricePanel(
        dates,
        tuple(f"S{i}" for i in range(closes.shape[1])),
        closes,
        closes,
        closes,
        closes,
        np.ones_like(closes),
    )


def _calm(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 0.004, (n, 1))
    return common + rng.normal(0, 0.006, (n, 5))


def test_a_joint_crash_is_a_crisis():
    crash = np.random.default_rng(1).normal(-0.02, 0.03, (25, 1)) + np.zeros((25, 5))
    history = _panel(np.r_[_calm(400), crash])
    reading = RegimeDetector().label(history, date(2030, 1, 1))
    assert reading.label == CRISIS
    assert reading.high_vol_probability > 0.5  # the switching model sees the variance jump
    assert reading.vol_percentile > 0.9  # the crash days themselves fill the top of the year


def test_steady_trends_are_trending_and_a_range_is_mean_reverting():
    rng = np.random.default_rng(2)
    # Calmer noise over the last 40 sessions keeps the vol percentile low (no crisis flag).
    noise = np.r_[rng.normal(0, 0.004, (380, 5)), rng.normal(0, 0.002, (40, 5))]
    reading = RegimeDetector().label(_panel(0.003 + noise), date(2030, 1, 1))
    assert reading.vol_percentile < 0.6
    assert reading.raw_label == TRENDING  # the session's own rule
    # Alternating +-1% with calm noise: a 63-day efficiency ratio near zero.
    zigzag = np.where(np.arange(420) % 2 == 0, 0.01, -0.01)[:, None] + rng.normal(
        0, 0.001, (420, 5)
    )
    reading = RegimeDetector().label(_panel(zigzag), date(2030, 1, 1))
    assert reading.efficiency < 0.18
    assert reading.raw_label == MEAN_REVERTING


def test_no_label_before_the_minimum_history():
    assert RegimeDetector().label(_panel(_calm(200)), date(2030, 1, 1)) is None


def test_labels_up_to_t_ignore_data_after_t():
    panel = _panel(np.r_[_calm(450, seed=3), _calm(100, seed=4) * 3])
    cut = 480
    noisy_returns = np.random.default_rng(9).normal(0, 0.05, (len(panel) - cut, 5))
    closes = panel.close.copy()
    closes[cut:] = closes[cut - 1] * np.exp(np.cumsum(noisy_returns, axis=0))
    noisy = replace(panel, open=closes, high=closes, low=closes, close=closes)
    real_detector, noisy_detector = RegimeDetector(), RegimeDetector()
    for detector, world in ((real_detector, panel), (noisy_detector, noisy)):
        detector.label(world.history_before(540), world.dates[540])  # look far ahead first
    days = range(cut - 60, cut + 1, 4)
    real = [real_detector.label(panel.history_before(d), panel.dates[d]) for d in days]
    fake = [noisy_detector.label(noisy.history_before(d), noisy.dates[d]) for d in days]
    assert real == fake
    assert {r.label for r in real} and all(r is not None for r in real)


def test_the_markov_model_refits_only_on_schedule():
    panel = _panel(_calm(400))
    detector = RegimeDetector(refit_every=21, min_history=300)
    for d in range(301, 301 + 21):  # 21 consecutive decisions inside one refit period
        detector.label(panel.history_before(d), panel.dates[d])
    assert detector.fits_done == 1
    detector.label(panel.history_before(301 + 21), panel.dates[301 + 21])
    assert detector.fits_done == 2


def test_hamilton_filter_by_hand_for_one_step():
    # P = [[0.9, 0.1], [0.2, 0.8]]: stationary (2/3, 1/3); variances 1 and 4.
    fit = MarkovFit(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([1.0, 4.0]), 1)
    r = 2.0
    prior = np.array([2 / 3 * 0.9 + 1 / 3 * 0.2, 2 / 3 * 0.1 + 1 / 3 * 0.8])
    density = np.array([np.exp(-0.5 * r**2), np.exp(-0.5 * r**2 / 4) / 2])
    expected = prior * density / (prior * density).sum()
    np.testing.assert_allclose(hamilton_filter(fit, np.array([r]))[0], expected)
    assert expected[1] == pytest.approx(hamilton_filter(fit, np.array([r]))[0, 1])


@pytest.mark.parametrize(
    ("newest_first", "confirm", "confirmed"),
    [
        (["trending", "trending"], 2, "trending"),
        # a new regime waits until it is called `confirm` times in a row
        (["crisis", "trending", "trending"], 2, "trending"),
        (["crisis", "crisis", "trending"], 2, "crisis"),
        (["trending", "mean_reverting", "crisis", "crisis", "trending"], 2, "crisis"),
        (["trending", "trending", "mean_reverting", "mean_reverting", "mean_reverting"], 3,
         "mean_reverting"),
        (["crisis", "crisis"], 1, "crisis"),
        (["crisis", "trending"], 1, "crisis"),
        # no confirmed regime before the labels run out or reach a session without one
        (["trending", "mean_reverting"], 2, None),
        (["trending", "mean_reverting", None, None], 2, None),
    ],
)  # fmt: skip
def test_confirmed_label_by_hand(
    newest_first: list[str | None], confirm: int, confirmed: str | None
) -> None:
    assert confirmed_label(newest_first, confirm) == confirmed


def test_each_label_is_the_confirmation_of_the_raw_labels_before_it():
    """Over 200 sessions of a calm market with two crashes, every label equals
    confirmed_label of the raw labels of its session and the sessions before it (a
    detector with confirm=1 gives the raw ones), never changes more often than they do,
    and differs from them where a new regime was not yet confirmed."""
    rng = np.random.default_rng(11)
    crash = rng.normal(-0.02, 0.03, (12, 1)) + np.zeros((12, 5))
    panel = _panel(np.r_[_calm(380, seed=5), crash, _calm(60, seed=6), crash, _calm(60, seed=7)])
    raw_detector, detector = RegimeDetector(confirm=1), RegimeDetector()
    days = range(320, len(panel))
    raw = [raw_detector.label(panel.history_before(d), panel.dates[d]).label for d in days]
    labels = [detector.label(panel.history_before(d), panel.dates[d]).label for d in days]
    for k in range(len(raw)):
        newest_first = raw[k::-1]
        assert labels[k] == (confirmed_label(newest_first, 2) or raw[k])
    changes = sum(a != b for a, b in pairwise(labels))
    assert CRISIS in labels and changes <= sum(a != b for a, b in pairwise(raw))
    assert any(a != b for a, b in zip(labels, raw, strict=True))  # some were held
