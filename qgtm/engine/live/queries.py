"""Engine commands the terminal calls: read-only queries plus the operator's flatten.

`register_queries(engine)` adds, via `TradingEngine.register_command`:

- `market.bars(symbol, lookback)`: daily bars up to the last processed session;
- `signals.recent(symbol=None, limit=200)`: stored strategy signals, newest first;
- `engine.flatten_preview()`: exactly what a flatten would do now (cancels and orders);
- `engine.flatten(expected)`: do it, through the normal OMS path (orders committed in
  state.sqlite, queued at the broker, filled at the next open, audited with actor
  "operator"); refused if the plan no longer matches the preview the operator confirmed.

Results are plain frozen dataclasses, so they can cross the attach socket later.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from qgtm.core import calendar
from qgtm.core.enums import OrderStatus
from qgtm.core.types import Order
from qgtm.engine.execution.oms import orders_for_targets

if TYPE_CHECKING:
    from qgtm.engine.live.engine import TradingEngine

OPERATOR = "operator"
OPERATOR_FLATTEN_SET = "OPFLAT"
MAX_LOOKBACK = 5000


class FlattenPlanChangedError(RuntimeError):
    """The book changed between the preview the operator confirmed and the flatten."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One daily bar."""

    session: date
    open: float
    high: float
    low: float
    close: float
    volume: int


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """One stored strategy signal."""

    strategy: str
    as_of: date
    symbol: str
    side: str
    weight: float
    confidence: float
    rationale: str


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """An order a flatten would send."""

    client_order_id: str
    symbol: str
    side: str
    quantity: int
    reference_price: float


@dataclass(frozen=True, slots=True)
class FlattenPlan:
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


def recent_bars(engine: TradingEngine, symbol: str, lookback: int = 250) -> list[Bar]:
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
    engine: TradingEngine, symbol: str | None = None, limit: int = 200
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


def _closing_orders(engine: TradingEngine) -> tuple[date | None, list[Order]]:
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


def flatten_plan(engine: TradingEngine) -> FlattenPlan:
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


def flatten(engine: TradingEngine, expected: list[str] | tuple[str, ...]) -> FlattenPlan:
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
    working = engine.broker.open_orders()
    with engine.state.transaction():
        engine.broker = type(engine.broker)(
            engine.config.execution.slippage_bps,
            Decimal(engine.config.execution.commission_per_share),
        )
        for order in working:
            if order.client_order_id in plan.order_ids:
                engine.broker.submit(order)  # an earlier flatten's order: keep it working
                continue
            engine.state.set_order_status(order.client_order_id, OrderStatus.CANCELED)
            engine.audit.append(
                "ORDER_CANCELED", OPERATOR, at, {"client_order_id": order.client_order_id}
            )
        for order in orders:
            submitted = replace(order, status=OrderStatus.SUBMITTED)
            if not engine.state.insert_order(submitted):
                continue
            engine.broker.submit(submitted)
            engine.audit.append(
                "ORDER_SUBMITTED",
                OPERATOR,
                at,
                {
                    "client_order_id": order.client_order_id,
                    "symbol": order.symbol,
                    "side": order.side.value,
                    "quantity": order.quantity,
                    "reason": order.reason,
                },
            )
    engine.alerts.appendleft(
        f"{plan.session} operator flatten: {len(plan.orders)} closing orders, "
        f"{len(plan.cancels)} cancelled"
    )
    engine.refresh_snapshot()
    return plan


def register_queries(engine: TradingEngine) -> None:
    """Register this module's commands on `engine`."""
    engine.register_command(
        "market.bars", lambda symbol, lookback=250: recent_bars(engine, symbol, lookback)
    )
    engine.register_command(
        "signals.recent",
        lambda symbol=None, limit=200: recent_signals(engine, symbol, limit),
    )
    engine.register_command("engine.flatten_preview", lambda: flatten_plan(engine))
    engine.register_command("engine.flatten", lambda expected: flatten(engine, expected))
