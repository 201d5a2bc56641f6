"""Signal aggregator: strategies -> deduplicated, regime-filtered signal sets per strategy.

It sits between signal generation and allocation. Each strategy declares the regimes it
trades in; in any other regime it is not run and contributes nothing. The allocator
receives one signal set per active strategy; `combine_strategy_sets` is the current
combination step (equal strategy weight, inverse-vol within each strategy), kept in one
function so ERC/HRP allocators can replace it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from qgtm.core.types import Signal
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import StrategyContext

ACTIVE = "active"
FILTERED = "filtered"


class SignalSource(Protocol):
    """What the aggregator needs of a strategy: its name, the regimes it trades in and its
    signals. `strategies.base.BaseStrategy` is one; the aggregator does not import the
    strategy package, so strategies and portfolio stay independent layers."""

    @property
    def name(self) -> str: ...

    @property
    def regimes(self) -> tuple[str, ...]: ...

    def trades_in(self, regime: str | None) -> bool: ...

    def generate(
        self, history: PricePanel, as_of: date, *, context: StrategyContext | None = None
    ) -> list[Signal]: ...


@dataclass(frozen=True, slots=True)
class StrategyStatus:
    """What one strategy did at one decision: active (with its signals) or filtered."""

    strategy: str
    status: str  # ACTIVE or FILTERED
    reason: str
    signals: tuple[Signal, ...] = ()


@dataclass(frozen=True, slots=True)
class Aggregation:
    """The aggregator's output for one decision session."""

    as_of: date
    regime: str | None
    statuses: tuple[StrategyStatus, ...]

    @property
    def per_strategy(self) -> dict[str, tuple[Signal, ...]]:
        """Signal set of every active strategy, by strategy name."""
        return {s.strategy: s.signals for s in self.statuses if s.status == ACTIVE}

    @property
    def signals(self) -> list[Signal]:
        """Every signal of every active strategy."""
        return [sig for s in self.statuses if s.status == ACTIVE for sig in s.signals]


def deduplicate(signals: Iterable[Signal]) -> list[Signal]:
    """One signal per (strategy, symbol, as_of); a later duplicate replaces an earlier one
    in place (first-seen order is kept)."""
    kept: dict[tuple[str, str, date], Signal] = {}
    for signal in signals:
        kept[(signal.strategy, signal.symbol, signal.as_of)] = signal
    return list(kept.values())


def aggregate(
    strategies: Sequence[SignalSource],
    history: PricePanel,
    as_of: date,
    regime: str | None,
    context: StrategyContext | None = None,
) -> Aggregation:
    """Run every strategy that trades in `regime` (all when the regime is unknown) and
    collect its deduplicated signals; the others are reported as filtered."""
    statuses = []
    seen: set[str] = set()
    for strategy in strategies:
        if strategy.name in seen:
            continue  # the same strategy configured twice runs once
        seen.add(strategy.name)
        if not strategy.trades_in(regime):
            trades = ", ".join(strategy.regimes)
            reason = f"regime {regime}; trades in {trades}"
            statuses.append(StrategyStatus(strategy.name, FILTERED, reason))
            continue
        signals = deduplicate(strategy.generate(history, as_of, context=context))
        reason = f"{len(signals)} signal(s)" if signals else "warming up or no view"
        statuses.append(StrategyStatus(strategy.name, ACTIVE, reason, tuple(signals)))
    return Aggregation(as_of, regime, tuple(statuses))
