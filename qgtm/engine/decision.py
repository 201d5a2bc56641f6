"""One decision: signals -> aggregation -> allocation -> risk -> orders.

Live trading (`live/sessions.rebalance`), the event-driven backtest and the vectorised
runner decide a session through `decide`, so the three cannot drift apart. For session
t, from bars strictly before t:

  signals      the regime label for t (`SignalSource.regime`), then the aggregator's
               per-strategy signal sets (`SignalSource.aggregate`: the strategies run on
               the history, or a backtest's precomputed signal matrices), recorded, then
               admitted (live drops symbols whose data failed a critical quality check);
  allocation   method "live": `allocate` (AllocationSettings; the last cov_window
               returns of the risk_lookback window; current weights; drawdown from the
               peak, 1 when equity <= 0) -> targets and per-strategy sleeves (recorded:
               the Kelly cap reads their paper returns back); method "signal" (a
               backtest's quick research ranking): inverse_vol_weights of every signal;
  risk         `run_checks` with the kill tier (live: with the market context, sectors,
               sleeves and each strategy's sleeve returns; signal: context-free), the
               result recorded (live: audit + risk events) and the approved targets sent
               on (live: the outbox);
  orders       `orders_for_targets` at the decision marks (FLATTEN's own set key once the
               tier is FLATTEN) and `select_algo` on the mean volume before t.
Nothing else is decided anywhere. While the tier is FLATTEN no signal is asked for and
the checks approve closing everything.

Side effects go through a `DecisionRecorder`: the live book's writes to state.sqlite,
the audit log and the outbox (live/recorder.py); a backtest's in-memory sleeve history
(backtest/decision.SessionDecision). The vectorised runner asks for no orders and books
the approved weights itself with the same share rounding (`target_quantity`,
`skip_small_trade`) in a tight loop; its compiled kernel books the quick "signal" method
only (backtest/kernel.py), where a parameter sweep needs the speed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol

import numpy as np

from qgtm.core.enums import KillTier
from qgtm.core.types import Order, RiskLimits, Signal
from qgtm.engine.data.store import PricePanel
from qgtm.engine.execution.algos import Algo, select_algo
from qgtm.engine.execution.oms import orders_for_targets
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.portfolio.aggregator import Aggregation, aggregate
from qgtm.engine.portfolio.allocator import AllocationSettings, allocate, inverse_vol_weights
from qgtm.engine.risk.checks import CheckResult, RiskContext, run_checks
from qgtm.engine.strategies.base import BaseStrategy

FLATTEN_SET = "FLATTEN"
"""The set key of the orders a FLATTEN book places (client order ids apart from any
strategy set's)."""
LIVE, SIGNAL = "live", "signal"


class SignalSource(Protocol):
    """Where a decision's signals come from."""

    def regime(self, history: PricePanel, day: date) -> str | None:
        """The regime label for `day` from the bars before it (None: unknown)."""
        ...

    def aggregate(self, history: PricePanel, day: date, regime: str | None) -> Aggregation:
        """Per-strategy deduplicated signal sets, regime-filtered."""
        ...


class DecisionRecorder(Protocol):
    """A decision's side effects, and the sleeve history it reads back."""

    audits_checks: bool
    """True: run the checks on a book with no target and no holding too (they approve
    nothing there), so the audit log has every decision's outcomes."""

    def signals(self, aggregation: Aggregation) -> None:
        """The aggregator's output for the session."""
        ...

    def admit(
        self, by_strategy: dict[str, list[Signal]], day: date, at: datetime
    ) -> dict[str, list[Signal]]:
        """The signal sets the allocation may use (live: data-quality blocks removed)."""
        ...

    def sleeves(self, index: int, sleeves: Mapping[str, Mapping[str, float]]) -> None:
        """Each strategy's proposed sleeve at session `index`, before any risk cut."""
        ...

    def strategy_returns(self, index: int) -> dict[str, list[float]]:
        """Each strategy's paper sleeve returns known before session `index` (Kelly cap)."""
        ...

    def checked(self, result: CheckResult, at: datetime) -> None:
        """Every check's outcome, cut and block."""
        ...

    def targets(
        self,
        approved: Mapping[str, float],
        signals: Sequence[Signal],
        cuts: Mapping[str, str],
        at: datetime,
    ) -> None:
        """The approved targets with the signals behind them (live: the outbox)."""
        ...


@dataclass(frozen=True, slots=True)
class DecisionRules:
    """What stays the same across a book's decisions."""

    symbols: tuple[str, ...]
    sectors: Mapping[str, str]
    limits: RiskLimits
    allocation: AllocationSettings
    cov_window: int  # sessions of returns behind the covariance estimate
    gross_target: float  # the "signal" method's gross
    method: str = LIVE  # LIVE or SIGNAL


@dataclass(frozen=True, slots=True)
class OrderRules:
    """How approved weights become orders."""

    set_key: str  # the strategy set's key in client order ids
    min_trade_value: Decimal
    adv_window: int  # sessions in the mean volume select_algo sees
    vwap_adv_fraction: float
    twap_adv_fraction: float


@dataclass(frozen=True, slots=True)
class DecisionPoint:
    """One session's inputs: the bars before it and the book at the decision marks."""

    index: int  # the session's row in the panel
    day: date
    at: datetime  # the decision's (simulated or wall-clock) time
    history: PricePanel  # bars strictly before the session
    returns: np.ndarray  # daily returns of the risk_lookback window before the session
    current: Mapping[str, float]  # weights of equity held
    equity: Decimal
    peak: Decimal
    tier: KillTier
    holdings: Mapping[str, int] = field(default_factory=dict)  # for orders
    marks: Mapping[str, Decimal] = field(default_factory=dict)  # for orders
    vols: Callable[[], Mapping[str, float]] | None = None  # method SIGNAL's volatilities


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """An order with the algo that works it and the mean volume behind that choice."""

    order: Order
    algo: Algo
    mean_volume: float | None  # None: no volume history before the session


@dataclass(frozen=True, slots=True)
class Decision:
    """What one session decided, stage by stage."""

    aggregation: Aggregation | None  # None while FLATTEN (no signal asked for)
    signals: list[Signal]  # the admitted signals
    targets: dict[str, float]  # the allocation's weights
    sleeves: dict[str, dict[str, float]]  # per strategy, before risk
    check: CheckResult | None  # None: nothing targeted or held and nobody audits it
    orders: list[PlannedOrder]

    @property
    def approved(self) -> dict[str, float]:
        """The weights the risk checks approved."""
        return self.check.approved if self.check is not None else {}


@dataclass(frozen=True, slots=True)
class StrategySignals:
    """Signals from running the strategies on the history (live, event-driven)."""

    strategies: Sequence[BaseStrategy]
    regime_of: Callable[[PricePanel, date], str | None]
    # the macro/COT inputs (None: the demo fallback), asked for only when signals are
    context_of: Callable[[], StrategyContext | None] = lambda: None

    def regime(self, history: PricePanel, day: date) -> str | None:
        """The label `regime_of` gives."""
        return self.regime_of(history, day)

    def aggregate(self, history: PricePanel, day: date, regime: str | None) -> Aggregation:
        """aggregator.aggregate over the strategies."""
        return aggregate(self.strategies, history, day, regime, self.context_of())


def decide(
    point: DecisionPoint,
    source: SignalSource,
    rules: DecisionRules,
    recorder: DecisionRecorder,
    orders: OrderRules | None = None,
) -> Decision:
    """Session `point.index`'s decision (see the module docstring); with `orders`, the
    orders that move the holdings to the approved weights."""
    aggregation: Aggregation | None = None
    signals: list[Signal] = []
    targets: dict[str, float] = {}
    sleeves: dict[str, dict[str, float]] = {}
    if point.tier < KillTier.FLATTEN:
        regime = source.regime(point.history, point.day)
        aggregation = source.aggregate(point.history, point.day, regime)
        recorder.signals(aggregation)
        by_strategy = recorder.admit(
            {k: list(v) for k, v in aggregation.per_strategy.items()}, point.day, point.at
        )
        signals = [s for strategy_signals in by_strategy.values() for s in strategy_signals]
        if rules.method == SIGNAL:
            vols = point.vols() if point.vols is not None else {}
            targets = inverse_vol_weights(signals, vols, rules.gross_target)
        else:
            allocation = allocate(
                by_strategy,
                point.returns[-rules.cov_window :],
                rules.symbols,
                point.current,
                _drawdown(point.equity, point.peak),
                rules.allocation,
            )
            targets, sleeves = allocation.targets, allocation.sleeves
            recorder.sleeves(point.index, sleeves)
    check = check_risk(point, targets, sleeves, rules, recorder)
    if check is not None:
        cuts = {d.symbol: d.reason for d in check.decisions}
        recorder.targets(check.approved, signals, cuts, point.at)
    planned = [] if orders is None else plan_orders(point, check, orders)
    return Decision(aggregation, signals, targets, sleeves, check, planned)


def check_risk(
    point: DecisionPoint,
    targets: Mapping[str, float],
    sleeves: Mapping[str, Mapping[str, float]],
    rules: DecisionRules,
    recorder: DecisionRecorder,
) -> CheckResult | None:
    """The risk stage: every check on `targets` against the current weights (recorded),
    the approved weights sent on. None when nothing is targeted or held and the recorder
    audits nothing: run_checks only changes the weights of names targeted or held, so
    it would approve {} whatever it measured (tests/engine/risk/test_checks.py)."""
    if not targets and not point.current and not recorder.audits_checks:
        return None
    context = None
    if rules.method == LIVE:
        context = RiskContext(
            symbols=rules.symbols,
            sectors=rules.sectors,
            returns=point.returns,
            sleeves=dict(sleeves),
            strategy_returns=recorder.strategy_returns(point.index) if sleeves else {},
        )
    result = run_checks(targets, point.current, point.tier, rules.limits, context)
    recorder.checked(result, point.at)
    return result


def plan_orders(
    point: DecisionPoint, check: CheckResult | None, rules: OrderRules
) -> list[PlannedOrder]:
    """The orders stage: `orders_for_targets` at the decision marks, each with the algo
    `select_algo` picks for its size against the mean volume of the last adv_window
    sessions before the decision."""
    approved = check.approved if check is not None else {}
    set_key = FLATTEN_SET if point.tier >= KillTier.FLATTEN else rules.set_key
    orders = orders_for_targets(
        approved,
        point.holdings,
        point.marks,
        point.equity,
        point.day,
        point.at,
        set_key,
        rules.min_trade_value,
    )
    if not orders:
        return []
    volume = point.history.volume[-rules.adv_window :]
    if len(volume) == 0:  # no history: select_algo sees no volume
        return [PlannedOrder(o, _algo(o, 0.0, rules), None) for o in orders]
    column = {s: j for j, s in enumerate(point.history.symbols)}
    means = volume.mean(axis=0)
    planned = []
    for order in orders:
        mean = float(means[column[order.symbol]])
        planned.append(PlannedOrder(order, _algo(order, mean, rules), mean))
    return planned


def _algo(order: Order, mean_volume: float, rules: OrderRules) -> Algo:
    return select_algo(
        order.quantity, mean_volume, rules.vwap_adv_fraction, rules.twap_adv_fraction
    )


def _drawdown(equity: Decimal, peak: Decimal) -> float:
    """(peak - equity) / peak, the allocator's dampening input; 1 when equity <= 0."""
    return float((peak - equity) / peak) if equity > 0 else 1.0
