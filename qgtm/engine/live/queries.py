"""Engine commands the terminal calls: read-only queries plus the operator's flatten.

`register_queries(engine)` binds these commands of the protocol (`qgtm.core.protocol`):

- `market.bars(symbol, lookback)`: daily bars up to the last processed session;
- `signals.recent(symbol=None, limit=200)`: stored strategy signals, newest first;
- `engine.flatten_preview()`: exactly what a flatten would do now (cancels and orders);
- `engine.flatten(expected)`: do it, through the normal OMS path (orders committed in
  state.sqlite, queued at the broker, filled at the next open, audited with actor
  "operator"); refused if the plan no longer matches the preview the operator confirmed;
- `execution.blotter(limit)`, `execution.children(parent_id)`, `execution.tca(limit)`:
  the blotter, a parent's child slices and TCA (OrderManager's dict rows converted to
  typed rows at this boundary).

Results are the core structs of `qgtm.core.results`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from qgtm.core import calendar
from qgtm.core.results import (
    Bar,
    BlotterRow,
    ChildOrderRow,
    FlattenPlan,
    PlannedOrder,
    SignalRecord,
    TcaReport,
    TcaRow,
    TcaStrategyRow,
)
from qgtm.core.types import Order
from qgtm.engine.audit import AuditLog
from qgtm.engine.data.store import PricePanel
from qgtm.engine.execution.algos import Algo
from qgtm.engine.execution.brokers.base import Broker
from qgtm.engine.execution.manager import OrderManager
from qgtm.engine.execution.oms import orders_for_targets
from qgtm.engine.portfolio.book import Book
from qgtm.engine.state import StateStore

OPERATOR = "operator"
OPERATOR_FLATTEN_SET = "OPFLAT"
MAX_LOOKBACK = 5000


class FlattenPlanChangedError(RuntimeError):
    """The book changed between the preview the operator confirmed and the flatten."""


class _Engine(Protocol):
    """What these commands use of the engine (so this module needs no engine import)."""

    panel: PricePanel
    next_index: int
    state: StateStore
    book: Book
    broker: Broker
    oms: OrderManager
    audit: AuditLog
    alerts: deque[str]

    @property
    def current_session(self) -> date | None: ...

    def _marks(self, index: int) -> dict[str, Decimal]: ...

    def refresh_snapshot(self) -> None: ...

    def bind(self, name: str, handler: Callable[..., Any], *, step_lock: bool = True) -> None: ...


def recent_bars(engine: _Engine, symbol: str, lookback: int = 250) -> list[Bar]:
    """The last `lookback` bars of `symbol` up to the last processed session (never later)."""
    panel = engine.panel
    if symbol not in panel.symbols:
        raise ValueError(f"unknown symbol {symbol!r} (universe: {', '.join(panel.symbols)})")
    if not 1 <= lookback <= MAX_LOOKBACK:
        raise ValueError(f"lookback must be between 1 and {MAX_LOOKBACK}, got {lookback}")
    column = panel.symbols.index(symbol)
    end = engine.next_index  # sessions < next_index are processed
    start = max(0, end - lookback)
    return [
        Bar(
            session=panel.dates[i],
            open=float(panel.open[i, column]),
            high=float(panel.high[i, column]),
            low=float(panel.low[i, column]),
            close=float(panel.close[i, column]),
            volume=int(panel.volume[i, column]),
        )
        for i in range(start, end)
    ]


def recent_signals(
    engine: _Engine, symbol: str | None = None, limit: int = 200
) -> list[SignalRecord]:
    """Stored signals, newest first, of one symbol or all."""
    sql = (
        "SELECT strategy, as_of, symbol, side, weight, confidence, rationale FROM signals "
        + ("WHERE symbol = ? " if symbol else "")
        + "ORDER BY as_of DESC, strategy, symbol LIMIT ?"
    )
    params: tuple[object, ...] = (symbol, limit) if symbol else (limit,)
    rows = engine.state.conn.execute(sql, params).fetchall()
    return [
        SignalRecord(r[0], date.fromisoformat(r[1]), r[2], r[3], float(r[4]), float(r[5]), r[6])
        for r in rows
    ]


def _closing_orders(engine: _Engine) -> tuple[date | None, list[Order]]:
    session = engine.current_session
    if session is None or not engine.book.holdings:
        return session, []
    marks = engine._marks(engine.next_index - 1)
    orders = orders_for_targets(
        {},
        engine.book.quantities(),
        marks,
        Decimal(1),
        session,
        calendar.session_close(session),
        OPERATOR_FLATTEN_SET,
        Decimal(0),
    )
    return session, [replace(o, reason="operator flatten") for o in orders]


def flatten_plan(engine: _Engine) -> FlattenPlan:
    """Cancel every working order and close every holding at the next open."""
    session, orders = _closing_orders(engine)
    marks = engine._marks(engine.next_index - 1) if session is not None else {}
    closing = {o.client_order_id for o in orders}
    return FlattenPlan(
        session=session,
        cancels=tuple(
            o.client_order_id
            for o in engine.broker.open_orders()
            if o.client_order_id not in closing
        ),
        orders=tuple(
            PlannedOrder(
                o.client_order_id, o.symbol, o.side.value, o.quantity, float(marks[o.symbol])
            )
            for o in orders
        ),
    )


def flatten(engine: _Engine, expected: list[str] | tuple[str, ...]) -> FlattenPlan:
    """Carry out the flatten the operator confirmed; refuse if the plan changed since."""
    plan = flatten_plan(engine)
    if tuple(expected) != plan.order_ids:
        raise FlattenPlanChangedError(
            "the book changed since the preview; review the flatten again"
        )
    if plan.is_empty:
        return plan
    at = calendar.session_close(plan.session) if plan.session else None
    assert at is not None
    _, orders = _closing_orders(engine)
    marks = engine._marks(engine.next_index - 1)
    with engine.state.transaction():
        engine.audit.append(
            "OPERATOR_FLATTEN",
            OPERATOR,
            at,
            {"orders": list(plan.order_ids), "cancels": list(plan.cancels)},
        )
        for client_order_id in plan.cancels:
            engine.oms.cancel(client_order_id)
        engine.oms.process_updates(at)
        for order in orders:  # through the OMS: recorded once, sent once, audited
            engine.oms.place(
                order,
                strategy=OPERATOR_FLATTEN_SET,
                algo=Algo.MARKET,
                decision_price=marks[order.symbol],
                at=at,
            )
    if engine.broker.commit_before_send:  # committed first, then sent
        engine.oms.dispatch(at)
    engine.alerts.appendleft(
        f"{plan.session} operator flatten: {len(plan.orders)} closing orders, "
        f"{len(plan.cancels)} cancelled"
    )
    engine.refresh_snapshot()
    return plan


def register_queries(engine: _Engine) -> None:
    """Register this module's commands on `engine`."""
    engine.bind("market.bars", lambda symbol, lookback: recent_bars(engine, symbol, lookback))
    engine.bind("signals.recent", lambda symbol, limit: recent_signals(engine, symbol, limit))
    engine.bind("engine.flatten_preview", lambda: flatten_plan(engine))
    engine.bind("engine.flatten", lambda expected: flatten(engine, expected))
    engine.bind(
        "execution.blotter",
        lambda limit: [msgspec.convert(r, BlotterRow) for r in engine.oms.blotter(limit)],
    )
    engine.bind(
        "execution.children",
        lambda parent_id: [
            msgspec.convert(r, ChildOrderRow) for r in engine.oms.children(parent_id)
        ],
    )
    engine.bind(
        "execution.tca",
        lambda limit: TcaReport(
            tuple(msgspec.convert(r, TcaRow) for r in engine.oms.tca_rows(limit)),
            tuple(msgspec.convert(r, TcaStrategyRow) for r in engine.oms.tca_by_strategy()),
        ),
    )
