"""The replay's session steps: fill at the open, decide at 15:30, book the close.

Per session t (all times New York):
  open   fill orders decided on t-1 at t's open (paper broker, with slippage);
  15:30  decide from bars strictly before t: signals, weights, risk, new orders;
  close  mark to market, daily P&L, kill-tier update, equity row.
Everything a session changes is committed in one SQLite transaction (`step`); the
engine's in-memory state is rebuilt from the store after any failed step.

Functions over the engine (`TradingEngine` holds the state, these the steps): the wall
clock reuses `rebalance` and the engine's `_close` hook, the risk manager `flatten_now`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from functools import partial

import numpy as np

from qgtm.core import calendar
from qgtm.core.enums import Side
from qgtm.core.types import Order
from qgtm.engine.data.store import PricePanel
from qgtm.engine.decision import (
    FLATTEN_SET,
    DecisionPoint,
    DecisionRules,
    OrderRules,
    StrategySignals,
    decide,
)
from qgtm.engine.execution.algos import Algo
from qgtm.engine.execution.brokers.paper import PaperBroker, SessionBar
from qgtm.engine.execution.manager import Benchmarks
from qgtm.engine.execution.oms import orders_for_targets
from qgtm.engine.live.parts import LiveEngine
from qgtm.engine.live.projection import build_snapshot
from qgtm.engine.live.recorder import BookRecorder
from qgtm.engine.portfolio.allocator import AllocationSettings, daily_returns
from qgtm.engine.risk.checks import RiskContext

log = logging.getLogger("qgtm.engine.live.engine")


def step(engine: LiveEngine) -> bool:
    """Process the next session; False when there is none left."""
    with engine._step_lock:
        if engine.at_end:
            return False
        index = engine.next_index
        try:
            with engine.state.transaction():
                engine._process_session(index)
        except Exception:
            log.exception("event=step_failed session=%s", engine.panel.dates[index])
            engine._restore()
            engine.learn.resync()
            engine._sync_learning()
            raise
        engine.next_index = index + 1
        if engine.broker.commit_before_send:  # committed first, then sent (never the reverse)
            engine.oms.dispatch(calendar.session_close(engine.panel.dates[index]))
        engine._snapshot = build_snapshot(engine)
        return True


def process_session(engine: LiveEngine, index: int) -> None:
    day = engine.panel.dates[index]
    _fill_at_open(engine, index, calendar.session_open(day))
    rebalance(engine, index, calendar.decision_time(day))
    engine._close(index, calendar.session_close(day))
    engine._flush_alerts()


def _fill_at_open(engine: LiveEngine, index: int, at: datetime) -> None:
    """Work the orders decided on t-1 through session t; fills are booked once."""
    p = engine.panel
    bars = {
        s: SessionBar(
            money(p.open[index, i]),
            money(p.high[index, i]),
            money(p.low[index, i]),
            money(p.close[index, i]),
            float(p.volume[index, i]),
        )
        for i, s in enumerate(p.symbols)
    }
    if isinstance(engine.broker, PaperBroker):
        engine.broker.execute_session(bars, engine.panel.dates[index])
    engine.oms.process_updates(at, {s: Benchmarks.from_bar(b) for s, b in bars.items()})


def _regime_of(engine: LiveEngine, history: PricePanel, day: date) -> str | None:
    """The regime label for `day` (the confirmed one, kept in state; raw for the screen)."""
    reading = engine.regime_detector.label(history, day)
    engine.regime = reading.label if reading is not None else None
    engine.regime_raw = reading.raw_label if reading is not None else None
    engine.state.set_meta("regime", engine.regime or "")
    return engine.regime


def rebalance(engine: LiveEngine, index: int, at: datetime) -> None:
    """Decide session `index` (engine/decision.decide, this book's stores as its
    recorder) and hand its orders to the OMS."""
    day = at.astimezone(calendar.NEW_YORK).date()  # == panel.dates[index] when replaying
    history = engine.panel.history_before(index)
    marks = engine._marks(index - 1)  # last price known at the decision
    point = DecisionPoint(
        index=index,
        day=day,
        at=at,
        history=history,
        returns=trailing_returns(history, engine.config.risk.risk_lookback),
        current=engine.book.weights(marks),
        equity=engine.book.equity(marks),
        peak=engine.peak_equity,
        tier=engine.kill_tier,
        holdings=engine.book.quantities(),
        marks=marks,
    )
    source = StrategySignals(
        engine.strategies, partial(_regime_of, engine), engine.strategy_inputs.get
    )
    decision = decide(
        point, source, _decision_rules(engine), _recorder(engine), _order_rules(engine)
    )
    if decision.aggregation is not None:
        engine.last_aggregation = decision.aggregation
    for planned in decision.orders:
        order = planned.order
        _submit(engine, order, at, planned.algo, marks[order.symbol], planned.mean_volume)


def _decision_rules(engine: LiveEngine) -> DecisionRules:
    symbols = tuple(engine.panel.symbols)
    return DecisionRules(
        symbols=symbols,
        sectors={s: engine.universe.sector_of(s) for s in symbols},
        limits=engine.config.risk,
        allocation=_allocation_settings(engine),
        cov_window=engine.config.portfolio.cov_window,
        gross_target=engine.config.engine.gross_target,
    )


def _order_rules(engine: LiveEngine) -> OrderRules:
    execution = engine.config.execution
    return OrderRules(
        set_key=engine.strategy_set,
        min_trade_value=Decimal(execution.min_trade_value),
        adv_window=execution.adv_window,
        vwap_adv_fraction=execution.vwap_adv_fraction,
        twap_adv_fraction=execution.twap_adv_fraction,
    )


def _recorder(engine: LiveEngine) -> BookRecorder:
    return BookRecorder(
        engine.state,
        engine.audit,
        engine.risk,
        engine.outbox,
        engine.market.connection,
        engine.strategy_set,
        engine.panel.close,
        tuple(engine.panel.symbols),
    )


def _allocation_settings(engine: LiveEngine) -> AllocationSettings:
    return AllocationSettings.from_config(engine.config)


def risk_context(
    engine: LiveEngine,
    returns: np.ndarray,
    sleeves: dict[str, dict[str, float]] | None = None,
    index: int | None = None,
) -> RiskContext:
    """Market facts for the checks; with sleeves, each strategy's paper return history
    (closes strictly before session `index`) for its fractional-Kelly cap."""
    strategy_returns: dict[str, list[float]] = {}
    if sleeves and index is not None:
        strategy_returns = engine.risk.strategy_returns(
            index, engine.panel.close[:index], tuple(engine.panel.symbols)
        )
    return RiskContext(
        symbols=tuple(engine.panel.symbols),
        sectors={s: engine.universe.sector_of(s) for s in engine.panel.symbols},
        returns=returns,
        sleeves=sleeves or {},
        strategy_returns=strategy_returns,
    )


def _submit(
    engine: LiveEngine,
    order: Order,
    at: datetime,
    algo: Algo,
    decision_price: Decimal,
    adv: float | None = None,
) -> None:
    """Hand one order to the OMS (recorded once; sent once); `adv` sizes the
    participation cap of a parent the OMS slices itself."""
    strategy = FLATTEN_SET if order.reason == "emergency flatten" else _strategy_name(engine)
    engine.oms.place(
        order, strategy=strategy, algo=algo, decision_price=decision_price, at=at, adv=adv
    )


def _strategy_name(engine: LiveEngine) -> str:
    return ",".join(engine.config.engine.strategies)


def close_session(engine: LiveEngine, index: int, at: datetime) -> None:
    day = engine.panel.dates[index]
    marks = engine._marks(index)
    equity = engine.book.equity(marks)
    engine.daily_pnl = equity - engine.prev_equity
    engine.risk.update_pnl(engine.daily_pnl, equity, at)
    engine.risk.flatten_complete(len(engine.book.holdings), equity, at)
    gross = sum((abs(marks[s] * h.quantity) for s, h in engine.book.holdings.items()), Decimal(0))
    engine.state.record_equity(
        day, equity, engine.book.cash, engine.daily_pnl, gross, engine.kill_tier.name
    )
    engine.state.save_positions(engine.book, marks)
    if isinstance(engine.broker, PaperBroker):
        engine.broker.update_marks(marks)
    for key, value in (
        ("last_index", index),
        ("last_session", day.isoformat()),
        ("cash", engine.book.cash),
        ("prev_equity", equity),
        ("daily_pnl", engine.daily_pnl),
    ):
        engine.state.set_meta(key, value)
    engine.prev_equity = equity
    engine.strategies = engine.learn.on_close(index, engine.strategies)


def flatten_now(engine: LiveEngine, at: datetime) -> None:
    """Stop every sliced parent's schedule, cancel working orders and send closing
    orders for every holding (fill next open)."""
    stop_algos(engine)
    for order in engine.broker.open_orders():
        engine.oms.cancel(order.client_order_id)
    engine.oms.process_updates(at)
    day = at.date()
    marks = {s: h.avg_price for s, h in engine.book.holdings.items()}
    orders = orders_for_targets(
        {}, engine.book.quantities(), marks, Decimal(1), day, at, FLATTEN_SET, Decimal(0)
    )
    for order in orders:
        _submit(
            engine, replace(order, reason="emergency flatten"), at, Algo.MARKET, marks[order.symbol]
        )


def stop_algos(engine: LiveEngine, increasing_only: bool = False) -> None:
    """Stop the schedules of sliced parents still planned or working (with
    `increasing_only`, just those that would grow a position: what NO_NEW forbids)."""
    working = set(engine.oms.working_parents())
    if not working:
        return
    held = engine.book.quantities()
    for order in engine.state.open_orders():
        if order.client_order_id not in working:
            continue
        holding = held.get(order.symbol, 0)
        grows = holding >= 0 if order.side is Side.BUY else holding <= 0
        if grows or not increasing_only:
            engine.oms.cancel(order.client_order_id)


def trailing_returns(history: PricePanel, sessions: int) -> np.ndarray:
    """Simple daily close-to-close returns of the last `sessions` sessions (T x N)."""
    return daily_returns(history.close, sessions)


def money(value: float) -> Decimal:
    """Market data floats as exact 4-decimal prices."""
    return Decimal(str(round(float(value), 4)))
