"""Paper broker: a simulated venue that fills against the market data.

Market orders fill at the next session's open; VWAP/TWAP parent orders are worked as
child orders along the intraday volume curve of the session's daily bar (each child
limited to a share of its bucket's volume), so large orders fill partially and the
remainder expires at the close. Every fill pays slippage plus half the spread against
us and arrives `latency_ms` after its bucket starts. Like a real broker it rejects
orders for unknown symbols, outside market hours, or beyond its buying power.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from qgtm.core import calendar
from qgtm.core.enums import OrderStatus
from qgtm.core.types import Fill, Order
from qgtm.engine.execution.algos import (
    BUCKET,
    INTRADAY_VOLUME_CURVE,
    Algo,
    child_quantities,
)
from qgtm.engine.execution.brokers.base import Account, BrokerOrder, OrderUpdate
from qgtm.engine.execution.oms import child_order_id

PRICE_QUANTUM = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class SessionBar:
    """One symbol's daily bar: the market the paper broker fills against."""

    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: float


def bucket_prices(bar: SessionBar, buckets: int = len(INTRADAY_VOLUME_CURVE)) -> list[Decimal]:
    """Intraday price path: open to close linearly at bucket midpoints, inside [low, high]."""
    prices = []
    for i in range(buckets):
        p = bar.open + (bar.close - bar.open) * Decimal(2 * i + 1) / Decimal(2 * buckets)
        prices.append(min(max(p, bar.low), bar.high))
    return prices


def session_vwap(bar: SessionBar) -> Decimal:
    """Market VWAP of the simulated session: sum over buckets of curve_i x price_i."""
    prices = bucket_prices(bar)
    total = sum((Decimal(str(w)) * p for w, p in zip(INTRADAY_VOLUME_CURVE, prices, strict=True)))
    return total.quantize(PRICE_QUANTUM)


def fill_price(open_price: Decimal, side_sign: int, cost_bps: Decimal) -> Decimal:
    """open * (1 + side * cost_bps / 10_000), rounded half-even to 1/100 cent."""
    slip = Decimal(1) + side_sign * cost_bps / Decimal(10_000)
    return (open_price * slip).quantize(PRICE_QUANTUM)


def commission(per_share: Decimal, quantity: int) -> Decimal:
    """per-share rate * quantity, rounded to 1/100 cent."""
    return (per_share * quantity).quantize(PRICE_QUANTUM)


class PaperBroker:
    """Simulated venue for paper trading and backtests.

    Fill price = reference * (1 + side * (slippage_bps + spread_bps / 2) / 10_000),
    rounded to 1/100 cent, where reference is the open (market orders) or the bucket's
    price on the intraday path (algo children); commission = per-share rate * quantity.
    Buying power = leverage * equity - gross exposure (Reg T style), checked for orders
    that increase exposure.
    """

    name = "paper"
    commit_before_send = False
    works_algos = True  # VWAP/TWAP parents are worked here, on the replay clock

    def __init__(
        self,
        slippage_bps: float,
        commission_per_share: Decimal,
        *,
        spread_bps: float = 0.0,
        participation_cap: float = 0.10,
        latency_ms: int = 0,
        cash: Decimal | None = None,
        positions: Mapping[str, int] | None = None,
        symbols: Iterable[str] | None = None,
        leverage: float = 2.0,
        check_hours: bool = False,
    ) -> None:
        self.slippage_bps = Decimal(str(slippage_bps))
        self.spread_bps = Decimal(str(spread_bps))
        self.commission_per_share = commission_per_share
        self.participation_cap = participation_cap
        self.latency = timedelta(milliseconds=latency_ms)
        self.cash = cash
        self._positions: dict[str, int] = {s: q for s, q in (positions or {}).items() if q}
        self.symbols = None if symbols is None else frozenset(symbols)
        self.leverage = Decimal(str(leverage))
        self.check_hours = check_hours
        self._marks: dict[str, Decimal] = {}
        self._pending: dict[str, Order] = {}
        self._known: dict[str, BrokerOrder] = {}
        self._updates: list[OrderUpdate] = []

    # ----- the Broker protocol -----------------------------------------------------
    def submit(self, order: Order) -> OrderUpdate:
        """Accept an order for the next session, or reject it; a repeated id is ignored."""
        if order.client_order_id in self._known:
            known = self._known[order.client_order_id]
            return OrderUpdate(order.client_order_id, known.status, broker_order_id="paper")
        reason = self._reject_reason(order)
        status = OrderStatus.REJECTED if reason else OrderStatus.ACCEPTED
        self._known[order.client_order_id] = BrokerOrder(
            order.client_order_id, "paper", order.symbol, status, order.quantity, 0, None
        )
        if not reason:
            self._pending[order.client_order_id] = order.with_status(OrderStatus.ACCEPTED)
        return OrderUpdate(order.client_order_id, status, broker_order_id="paper", reason=reason)

    def cancel(self, client_order_id: str) -> None:
        """Cancel a queued order before it works; unknown or finished ids are ignored."""
        order = self._pending.pop(client_order_id, None)
        if order is not None:
            self._set_status(client_order_id, OrderStatus.CANCELED)
            self._updates.append(
                OrderUpdate(client_order_id, OrderStatus.CANCELED, reason="canceled by request")
            )

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """What the simulator knows about an order."""
        return self._known.get(client_order_id)

    def open_orders(self) -> list[Order]:
        """Queued orders in submission order."""
        return list(self._pending.values())

    def positions(self) -> dict[str, int]:
        """Shares held per symbol as the simulator booked its own fills."""
        return dict(self._positions)

    def account(self) -> Account:
        """Cash, equity at the last marks and Reg-T-style buying power."""
        cash = self.cash if self.cash is not None else Decimal(0)
        equity = cash + sum(
            (q * self._marks.get(s, Decimal(0)) for s, q in self._positions.items()), Decimal(0)
        )
        return Account(cash=cash, buying_power=self._buying_power(), equity=equity)

    def drain_updates(self) -> list[OrderUpdate]:
        """Updates produced since the last call."""
        updates, self._updates = self._updates, []
        return updates

    # ----- the simulation ----------------------------------------------------------
    def adopt(self, order: Order) -> None:
        """Re-queue an order accepted before a restart (no checks: it was accepted then)."""
        self._known[order.client_order_id] = BrokerOrder(
            order.client_order_id,
            "paper",
            order.symbol,
            OrderStatus.ACCEPTED,
            order.quantity,
            order.filled_quantity,
            None,
        )
        self._pending[order.client_order_id] = order.with_status(OrderStatus.ACCEPTED)

    def update_marks(self, marks: Mapping[str, Decimal]) -> None:
        """Latest prices, used for buying power."""
        self._marks.update(marks)

    def execute_session(
        self, bars: Mapping[str, SessionBar], day: date, start: datetime | None = None
    ) -> list[OrderUpdate]:
        """Work every queued order through session `day`; returns (and queues) the updates.

        `start` is when the session opens (default: the XNYS open of `day`); a backtest
        over bars of any calendar passes its own simulated clock.
        """
        start = calendar.session_open(day) if start is None else start
        updates: list[OrderUpdate] = []
        for order in list(self._pending.values()):
            bar = bars[order.symbol]
            if order.order_type == "market":
                fill = self._fill(order, order.client_order_id, bar.open, order.quantity, start)
                updates.append(self._book(order, fill, order.quantity))
                continue
            updates.extend(self._work_algo(order, bar, start))
        self._pending.clear()
        self._updates.extend(updates)
        return updates

    def fill_at_open(
        self,
        opens: Mapping[str, Decimal],
        filled_at: datetime,
        impact_bps: Mapping[str, Decimal] | None = None,
    ) -> list[Fill]:
        """Fill every queued order at `opens` as a market order and clear the queue.

        `impact_bps` (by client_order_id) adds market impact on top of slippage and spread
        (the backtest's cost model uses it).
        """
        fills = []
        for order in self._pending.values():
            extra = impact_bps.get(order.client_order_id, Decimal(0)) if impact_bps else Decimal(0)
            fill = self._fill(
                order, order.client_order_id, opens[order.symbol], order.quantity, extra_bps=extra
            )
            fills.append(replace(fill, filled_at=filled_at))
            self._book(order, fill, order.quantity)
        self._pending.clear()
        return fills

    def _work_algo(self, order: Order, bar: SessionBar, start: datetime) -> list[OrderUpdate]:
        algo = Algo(order.order_type.upper())
        volumes = [w * bar.volume for w in INTRADAY_VOLUME_CURVE]
        executed, remainder = child_quantities(
            algo, order.quantity, volumes, self.participation_cap
        )
        updates = []
        done = 0
        for i, (qty, price) in enumerate(zip(executed, bucket_prices(bar), strict=True)):
            if qty == 0:
                continue
            done += qty
            child = child_order_id(order.client_order_id, i + 1)
            fill = self._fill(order, child, price, qty, start + i * BUCKET)
            updates.append(self._book(order, fill, done))
        if remainder:
            self._set_status(order.client_order_id, OrderStatus.EXPIRED)
            updates.append(
                OrderUpdate(
                    order.client_order_id,
                    OrderStatus.EXPIRED,
                    reason=f"{remainder} of {order.quantity} unfilled at the end of the window",
                    remaining_quantity=remainder,
                )
            )
        return updates

    def _fill(
        self,
        order: Order,
        child_id: str,
        reference: Decimal,
        quantity: int,
        at: datetime | None = None,
        extra_bps: Decimal = Decimal(0),
    ) -> Fill:
        cost_bps = self.slippage_bps + self.spread_bps / 2 + extra_bps
        price = fill_price(reference, order.side.sign, cost_bps)
        return Fill(
            fill_id=f"{child_id}-F1",
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=quantity,
            price=price,
            commission=commission(self.commission_per_share, quantity),
            filled_at=(at or order.created_at) + self.latency,
        )

    def _book(self, order: Order, fill: Fill, filled_so_far: int) -> OrderUpdate:
        held = self._positions.get(order.symbol, 0) + fill.signed_quantity
        if held:
            self._positions[order.symbol] = held
        else:
            self._positions.pop(order.symbol, None)
        if self.cash is not None:
            self.cash -= fill.signed_quantity * fill.price + fill.commission
        status = (
            OrderStatus.FILLED if filled_so_far >= order.quantity else OrderStatus.PARTIALLY_FILLED
        )
        self._set_status(order.client_order_id, status, filled_so_far)
        return OrderUpdate(order.client_order_id, status, fill=fill, broker_order_id="paper")

    def _set_status(self, cid: str, status: OrderStatus, filled: int | None = None) -> None:
        known = self._known[cid]
        # the constructor, not dataclasses.replace: this runs for every fill
        self._known[cid] = BrokerOrder(
            known.client_order_id,
            known.broker_order_id,
            known.symbol,
            status,
            known.quantity,
            known.filled_quantity if filled is None else filled,
            known.avg_fill_price,
        )

    def _buying_power(self) -> Decimal:
        if self.cash is None:
            return Decimal("Infinity")
        values = [q * self._marks.get(s, Decimal(0)) for s, q in self._positions.items()]
        equity = self.cash + sum(values, Decimal(0))
        gross = sum((abs(v) for v in values), Decimal(0))
        return self.leverage * equity - gross

    def _reject_reason(self, order: Order) -> str:
        if self.symbols is not None and order.symbol not in self.symbols:
            return f"unknown symbol {order.symbol}"
        if self.check_hours and not _market_open(order.created_at):
            return f"market closed at {order.created_at:%Y-%m-%d %H:%M}"
        mark = self._marks.get(order.symbol)
        if mark is None or self.cash is None:
            return ""
        held = self._positions.get(order.symbol, 0)
        pending = sum(
            o.side.sign * o.quantity for o in self._pending.values() if o.symbol == order.symbol
        )
        before = held + pending
        after = before + order.side.sign * order.quantity
        added = (abs(after) - abs(before)) * mark
        if added <= 0:
            return ""
        reserved = sum(
            (o.quantity * self._marks.get(o.symbol, Decimal(0)) for o in self._pending.values()),
            Decimal(0),
        )
        available = self._buying_power() - reserved
        if added > available:
            return f"insufficient buying power: needs {added:.2f}, has {available:.2f}"
        return ""


def _market_open(at: datetime) -> bool:
    """True inside an XNYS session's regular hours (open and close inclusive)."""
    day = at.date()
    if not calendar.is_session(day):
        return False
    return calendar.session_open(day) <= at <= calendar.session_close(day)


def filled_positions(conn: sqlite3.Connection) -> dict[str, int]:
    """The paper venue's positions rebuilt from its fills (not from the engine's book)."""
    rows = conn.execute(
        "SELECT symbol, SUM(CASE side WHEN 'BUY' THEN quantity ELSE -quantity END) "
        "FROM fills GROUP BY symbol"
    ).fetchall()
    return {symbol: int(qty) for symbol, qty in rows if qty}
