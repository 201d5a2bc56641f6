"""Typed results of engine commands (see `protocol`): what a screen or the CLI gets back.

Frozen msgspec structs, so they cross the attach socket as JSON and decode back into
the same type; the terminal reads them as attributes, never as dict keys.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec


class Bar(msgspec.Struct, frozen=True):
    """One daily bar."""

    session: date
    open: float
    high: float
    low: float
    close: float
    volume: int


class SignalRecord(msgspec.Struct, frozen=True):
    """One stored strategy signal."""

    strategy: str
    as_of: date
    symbol: str
    side: str
    weight: float
    confidence: float
    rationale: str


class PlannedOrder(msgspec.Struct, frozen=True):
    """An order a flatten would send."""

    client_order_id: str
    symbol: str
    side: str
    quantity: int
    reference_price: float


class FlattenPlan(msgspec.Struct, frozen=True):
    """What `engine.flatten` would do now: cancel working orders, close every holding."""

    session: date | None
    cancels: tuple[str, ...]
    orders: tuple[PlannedOrder, ...]

    @property
    def order_ids(self) -> tuple[str, ...]:
        """The closing orders' ids, the token `engine.flatten` checks."""
        return tuple(o.client_order_id for o in self.orders)

    @property
    def is_empty(self) -> bool:
        """Nothing to cancel and nothing to close."""
        return not self.cancels and not self.orders


class StrategyParameter(msgspec.Struct, frozen=True):
    """One tunable parameter of a strategy, with its bounds."""

    name: str
    default: float
    low: float
    high: float
    description: str


class StrategyInfo(msgspec.Struct, frozen=True):
    """A registered strategy's declarations and its status in the running engine:
    `status` 'active', 'filtered: <reason>' or 'not configured'; `inputs` each macro/COT
    input's source ("FRED", "CFTC", "demo fallback"); `data` the one-line summary."""

    name: str
    family: str
    description: str
    reference: str
    parameters: tuple[StrategyParameter, ...]
    factor_exposures: dict[str, float]
    capacity_usd: float
    features: tuple[str, ...]
    regimes: tuple[str, ...]
    warmup: int
    status: str
    inputs: dict[str, str]
    data: str


class BlotterRow(msgspec.Struct, frozen=True):
    """One parent order on the execution blotter: state, algo, fills, slices, rest."""

    client_order_id: str
    decision_date: str
    symbol: str
    side: str
    quantity: int
    status: str
    filled_quantity: int
    avg_fill_price: float | None
    algo: str
    strategy: str
    unfilled: int
    note: str
    children: int


class ChildOrderRow(msgspec.Struct, frozen=True):
    """One slice of a parent order: planned or sent, and what it filled."""

    child_order_id: str
    quantity: int
    filled: int
    price: float | None
    filled_at: str | None
    status: str
    release_at: str | None


class TcaRow(msgspec.Struct, frozen=True):
    """Transaction costs of one finished parent order (bps against each benchmark)."""

    client_order_id: str
    strategy: str
    symbol: str
    side: str
    algo: str
    quantity: int
    filled_quantity: int
    avg_fill_price: float | None
    decision_price: float
    arrival_price: float
    vwap_price: float
    end_price: float
    commission: float
    arrival_cost_bps: float | None
    vwap_slippage_bps: float | None
    implementation_shortfall_bps: float
    computed_at: str
    arrival_source: str = ""
    vwap_source: str = ""


class TcaStrategyRow(msgspec.Struct, frozen=True):
    """One strategy's orders and notional-weighted mean costs in bps."""

    strategy: str
    orders: int
    arrival_cost_bps: float | None
    vwap_slippage_bps: float | None
    implementation_shortfall_bps: float | None


class TcaReport(msgspec.Struct, frozen=True):
    """The Orders screen's cost tables."""

    orders: tuple[TcaRow, ...]
    strategies: tuple[TcaStrategyRow, ...]


class LearnStatus(msgspec.Struct, frozen=True):
    """What the terminal shows of the learning loop for one strategy."""

    strategy: str
    production: str | None
    status: str
    sharpe: float
    hit_rate: float
    drift: float
    job: str | None
    shadow: str | None


class ModelInfo(msgspec.Struct, frozen=True):
    """One registered version of a strategy's parameters."""

    model_id: str
    strategy: str
    version: int
    stage: str
    params: dict[str, float]
    artifact_sha256: str
    train_start: str | None
    train_end: str | None
    metrics: dict[str, Any]
    data_hash: str
    created_session: str


class DecayPoint(msgspec.Struct, frozen=True):
    """A strategy's decay status and rolling Sharpe at one session close."""

    session: str
    status: str
    sharpe: float


class OutboxStatus(msgspec.Struct, frozen=True):
    """The publication outbox: counts, the oldest pending item, the last error."""

    pending: int
    sent: int
    last_error: str | None
    oldest_pending: str | None
    last_sent_at: str | None


class ReconRun(msgspec.Struct, frozen=True):
    """One reconciliation: how many positions the broker and the book hold, and how
    many of them disagree."""

    broker: int
    local: int
    discrepancies: int


class BacktestJobStatus(msgspec.Struct, frozen=True):
    """A background backtest: its request, state (queued, running, done, failed,
    cancelled), progress and, once done, its result: the run's summary document (report,
    validation, config, curves) as stored beside the run."""

    job: int
    request: dict[str, Any]
    state: str
    done: int
    total: int
    error: str
    result: dict[str, Any] = {}


class StoredRunRow(msgspec.Struct, frozen=True):
    """One line of the stored-runs list."""

    run: str
    strategy: str
    runner: str | None
    decision: str | None
    start: str
    end: str
    sharpe: float | None
    cagr: float | None
    max_drawdown: float | None
    trades: int | None
    data_hash: str | None
    saved: str
