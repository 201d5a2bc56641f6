"""The batched crossover signals equal the one-pair signal matrix, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from qgtm.engine.backtest.sma import SmaCrossover, crossover_signals
from qgtm.engine.data.store import PricePanel


def test_every_pair_of_the_batch_is_the_single_pair_matrix(demo_panel: PricePanel) -> None:
    pairs = [(5, 60), (10, 30), (20, 21), (50, 120)]
    batch = crossover_signals(demo_panel, pairs, 120)
    for k, (fast, slow) in enumerate(pairs):
        one = SmaCrossover(fast=fast, slow=slow).signal_matrix(demo_panel)
        one[:120] = np.nan  # the batch starts every pair at the common warm-up
        np.testing.assert_array_equal(batch[k], one)
    assert np.nanmean(batch[0]) not in (0.0, 1.0)  # both sides occur


def test_a_warmup_shorter_than_the_slow_average_is_refused(demo_panel: PricePanel) -> None:
    with pytest.raises(ValueError, match="warmup"):
        crossover_signals(demo_panel, [(5, 60)], 30)


def test_generate_from_a_cached_panel_equals_generate_from_a_copy(
    demo_panel: PricePanel,
) -> None:
    """The per-panel prefix-sum cache gives the same signals as a fresh history copy."""
    from dataclasses import replace

    strategy, fresh = SmaCrossover(fast=3, slow=7), SmaCrossover(fast=3, slow=7)
    for i in (8, 9, 200, len(demo_panel) - 1, 50):
        history = demo_panel.history_before(i)
        copy = replace(history, close=history.close.copy())
        day = demo_panel.dates[i]
        cached = strategy.generate(history, day)
        assert [s.side for s in cached] == [s.side for s in fresh.generate(copy, day)]
        assert [s.rationale for s in cached] == [s.rationale for s in fresh.generate(copy, day)]
