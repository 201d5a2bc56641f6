"""Moving-average crossover: the reference strategy for runner checks and benchmarks.

Not in the strategy registry (the families live in qgtm.engine.strategies); it exists
so the event-driven and vectorised runners, and the peers in bench/, can run one rule
whose vectorised form is bit-identical to its point-in-time form.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from qgtm.core.enums import SignalDirection
from qgtm.core.types import Signal
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.strategies.base import BaseStrategy, Parameter


def _prefix_sums(close: np.ndarray) -> np.ndarray:
    """Cumulative sums with a leading zero row; prefixes are identical for any history."""
    return np.vstack([np.zeros((1, close.shape[1])), np.cumsum(close, axis=0)])


class SmaCrossover(BaseStrategy):
    """Long while the fast simple moving average of closes is above the slow one, else flat.

    SMA_n(t) = (1/n) * sum_{k=1..n} close_{t-k} over bars before the decision session.
    """

    name = "sma_ref"
    family = "trend (reference)"
    description = "fast/slow simple moving-average crossover, long or flat"
    reference = "Brock, Lakonishok, LeBaron (1992), J. Finance 47(5)"
    parameters = (
        Parameter("fast", 10, 2, 200, "sessions in the fast average"),
        Parameter("slow", 30, 3, 400, "sessions in the slow average"),
    )

    @property
    def warmup(self) -> int:
        """The slow window."""
        return int(max(self.params["fast"], self.params["slow"]))

    def generate(
        self, history: PricePanel, as_of: date, *, context: StrategyContext | None = None
    ) -> list[Signal]:
        """LONG when SMA_fast > SMA_slow at the last bar before `as_of`, FLAT otherwise."""
        if len(history) < self.warmup:
            return []
        sums = self._sums(history.close)
        fast, slow = int(self.params["fast"]), int(self.params["slow"])
        fast_ma = (sums[-1] - sums[-1 - fast]) / fast
        slow_ma = (sums[-1] - sums[-1 - slow]) / slow
        return [
            Signal(
                symbol=symbol,
                side=SignalDirection.LONG if fast_ma[j] > slow_ma[j] else SignalDirection.FLAT,
                weight=1.0,
                confidence=1.0,
                strategy=self.name,
                as_of=as_of,
                rationale=f"SMA{fast} {fast_ma[j]:.2f} vs SMA{slow} {slow_ma[j]:.2f}",
            )
            for j, symbol in enumerate(history.symbols)
        ]

    def _sums(self, close: np.ndarray) -> np.ndarray:
        """Prefix sums of `close`. A point-in-time history is a leading slice of the full
        panel's array; cumsum is sequential, so the full array's sums cut at len(close)
        are the slice's own sums bit for bit: computed once per panel, not per session."""
        base = close.base if isinstance(close.base, np.ndarray) else None
        if (
            base is None
            or base.ndim != 2
            or base.shape[1] != close.shape[1]
            or close.strides != base.strides
            or close.__array_interface__["data"][0] != base.__array_interface__["data"][0]
        ):
            return _prefix_sums(close)
        cached = getattr(self, "_cache", None)
        if cached is None or cached[0] is not base:
            cached = (base, _prefix_sums(base))
            self._cache = cached
        return cached[1][: len(close) + 1]

    def signal_matrix(self, panel: PricePanel) -> np.ndarray:
        """Netted signal per session (row i from bars before i): 1 long, 0 flat, NaN warm-up."""
        sums = _prefix_sums(panel.close)
        fast, slow = int(self.params["fast"]), int(self.params["slow"])
        out = np.full(panel.close.shape, np.nan)
        rows = np.arange(self.warmup, len(panel))
        fast_ma = (sums[rows] - sums[rows - fast]) / fast
        slow_ma = (sums[rows] - sums[rows - slow]) / slow
        out[rows] = np.where(fast_ma > slow_ma, 1.0, 0.0)
        return out


def crossover_signals(panel: PricePanel, pairs: list[tuple[int, int]], warmup: int) -> np.ndarray:
    """`SmaCrossover(fast, slow).signal_matrix(panel)` for many (fast, slow) pairs at once,
    every pair starting at `warmup` (pairs x sessions x symbols; NaN before `warmup`).

    One prefix-sum table serves every pair and each pair's averages are the same float
    expressions as signal_matrix, so each slice is bit-identical to the one-pair matrix.
    """
    sums = _prefix_sums(panel.close)
    out = np.full((len(pairs), *panel.close.shape), np.nan)
    rows = np.arange(warmup, len(panel))
    fasts = np.array([f for f, _ in pairs])
    slows = np.array([s for _, s in pairs])
    if max(max(fasts, default=0), max(slows, default=0)) > warmup:
        raise ValueError("warmup must cover the slowest average")
    top = sums[rows][None]  # (1, rows, symbols)
    fast_ma = (top - sums[rows[None, :] - fasts[:, None]]) / fasts[:, None, None]
    slow_ma = (top - sums[rows[None, :] - slows[:, None]]) / slows[:, None, None]
    out[:, rows] = np.where(fast_ma > slow_ma, 1.0, 0.0)
    return out
