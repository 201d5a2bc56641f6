from __future__ import annotations

from datetime import date, timedelta
from typing import ClassVar

import numpy as np

from qgtm.core.enums import SignalDirection
from qgtm.core.types import Signal
from qgtm.engine.data.store import PricePanel
from qgtm.engine.portfolio.aggregator import (
    ACTIVE,
    FILTERED,
    aggregate,
    deduplicate,
)
from qgtm.engine.strategies.base import BaseStrategy

DAY = date(2024, 3, 1)


def _signal(strategy: str, symbol: str, side=SignalDirection.LONG, confidence=0.5) -> Signal:
    return Signal(symbol, side, 1.0, confidence, strategy, DAY)


class _Fixed(BaseStrategy):
    """Emits a fixed list (with a duplicate) so the aggregator's work is visible."""

    name = "fixed"
    family = "test"
    description = "fixed signals"
    reference = "test"
    regimes: ClassVar[tuple[str, ...]] = ("trending",)
    warmup = 0

    def generate(self, history, as_of, *, context=None):
        return [
            _signal("fixed", "GLD", confidence=0.2),
            _signal("fixed", "USO", SignalDirection.SHORT),
            _signal("fixed", "GLD", confidence=0.9),
        ]


class _Everywhere(_Fixed):
    name = "everywhere"
    regimes: ClassVar[tuple[str, ...]] = ("trending", "mean_reverting", "crisis")

    def generate(self, history, as_of, *, context=None):
        return [_signal("everywhere", "SLV")]


def _history() -> PricePanel:
    closes = np.ones((3, 1))
    dates = tuple(DAY - timedelta(days=3 - i) for i in range(3))
    return PricePanel(dates, ("GLD",), closes, closes, closes, closes, closes)


def test_duplicates_of_strategy_symbol_and_day_keep_the_latest():
    out = deduplicate(
        [
            _signal("a", "GLD", confidence=0.1),
            _signal("a", "GLD", confidence=0.7),
            _signal("b", "GLD"),
        ]
    )
    assert [(s.strategy, s.confidence) for s in out] == [("a", 0.7), ("b", 0.5)]


def test_strategies_outside_their_regimes_are_filtered_not_run():
    result = aggregate([_Fixed(), _Everywhere()], _history(), DAY, "crisis")
    assert [(s.strategy, s.status) for s in result.statuses] == [
        ("fixed", FILTERED),
        ("everywhere", ACTIVE),
    ]
    assert "regime crisis" in result.statuses[0].reason
    assert list(result.per_strategy) == ["everywhere"]


def test_active_strategy_hands_over_a_deduplicated_set():
    result = aggregate([_Fixed()], _history(), DAY, "trending")
    signals = result.per_strategy["fixed"]
    assert [(s.symbol, s.confidence) for s in signals] == [("GLD", 0.9), ("USO", 0.5)]


def test_unknown_regime_runs_every_strategy():
    result = aggregate([_Fixed(), _Everywhere()], _history(), DAY, None)
    assert all(s.status == ACTIVE for s in result.statuses)


class _PlainSource:
    """Not a BaseStrategy: anything with a name, regimes, trades_in and generate will do."""

    name = "plain"
    regimes = ("trending",)

    def trades_in(self, regime: str | None) -> bool:
        return regime in self.regimes

    def generate(self, history, as_of, *, context=None):
        return [_signal("plain", "USO")]


def test_any_signal_source_is_aggregated_not_only_a_base_strategy():
    result = aggregate([_PlainSource()], _history(), DAY, "trending")
    filtered = aggregate([_PlainSource()], _history(), DAY, "crisis")
    assert [s.symbol for s in result.signals] == ["USO"]
    assert [s.status for s in filtered.statuses] == [FILTERED]
