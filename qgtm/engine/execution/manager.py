"""OrderManager: the OMS between the risk manager and a Broker.

It owns an order's life after the decision: persist the parent order (committed before a
venue outside this process sees it), send it once, apply what the venue reports through
the legal state machine (`lifecycle`), book every fill exactly once, and when the parent
is done compute its TCA (stored in the `tca` table and logged as TCA_RESULT).

Idempotency: the client order id is deterministic (see `oms.client_order_id`), the order
row is keyed by it, fills are keyed by the venue's execution id, and after a crash an
order that may have been sent is looked up at the venue by its client id before it is
ever sent again.

Its parts, one concept each: `store` (the OMS's rows and typed read models),
`slicer` (VWAP/TWAP children on the wall clock for a venue that does not work algos,
and `AlgoClock` that drives it), `benchmarks` (the prices TCA compares against) and
`tca` (the maths). This class holds the lifecycle and the booking.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from qgtm.core.enums import OrderStatus
from qgtm.core.types import Fill, Order
from qgtm.engine.audit import AuditLog
from qgtm.engine.execution import tca
from qgtm.engine.execution.algos import BUCKET, Algo, execution_window
from qgtm.engine.execution.benchmarks import Benchmarks, VenueBenchmarks
from qgtm.engine.execution.brokers.base import Broker, BrokerError, BrokerOrder, OrderUpdate
from qgtm.engine.execution.lifecycle import is_legal, is_terminal
from qgtm.engine.execution.market_data import MarketData
from qgtm.engine.execution.slicer import OPEN_CHILD, WallClockSlicer
from qgtm.engine.execution.store import ExecutionStore, as_dicts
from qgtm.engine.state import StateStore

log = logging.getLogger(__name__)


class OrderManager:
    """Sends orders to one Broker and books what comes back (see module docstring)."""

    def __init__(
        self,
        state: StateStore,
        audit: AuditLog,
        broker: Broker,
        on_fill: Callable[[Fill], None],
        actor: str = "oms",
        *,
        participation_cap: float = 0.10,
        market_data: MarketData | None = None,
        adv_window: int = 20,
        min_window: timedelta = 2 * BUCKET,
    ) -> None:
        self.state = state
        self.conn: sqlite3.Connection = state.conn
        self.store = ExecutionStore(state.conn)
        self.audit = audit
        self.broker = broker
        self.on_fill = on_fill
        self.actor = actor
        self.market_data = (
            market_data if market_data is not None else getattr(broker, "market_data", None)
        )
        self.benchmarks = VenueBenchmarks(state.conn, self.market_data)
        self.slicer = WallClockSlicer(
            self,
            participation_cap=participation_cap,
            adv_window=adv_window,
            min_window=min_window,
        )

    @property
    def slices(self) -> bool:
        """True when this OMS slices VWAP/TWAP parents itself (the venue does not)."""
        return not getattr(self.broker, "works_algos", True)

    # ----- orders out --------------------------------------------------------------
    def place(
        self,
        order: Order,
        *,
        strategy: str,
        algo: Algo,
        decision_price: Decimal,
        at: datetime,
        adv: float | None = None,
    ) -> bool:
        """Record a new parent order; send it now if the venue lives in this process.

        Returns False (nothing written, nothing sent) if this decision already made it.
        Runs inside the caller's transaction; for an external venue call `dispatch()`
        after that transaction commits. `adv` (average daily volume) sizes the
        participation cap of a sliced parent; without it the venue's data is asked.
        """
        order = order.with_status(OrderStatus.NEW, algo.value.lower())
        if not self.state.insert_order(order):
            return False
        self.store.add_execution(order.client_order_id, strategy, algo.value, decision_price)
        if self.slices and algo is not Algo.MARKET:
            self.slicer.register(order.client_order_id, algo, adv)
        if not self.broker.commit_before_send:
            self._send(order, at)
        return True

    def dispatch(self, at: datetime) -> int:
        """Send every committed NEW order, one transaction each; returns how many went out.

        If the venue cannot be reached (BrokerError), that order's transaction rolls back
        and it stays NEW: the next dispatch (or restart) looks it up before resending.
        """
        sent = 0
        for order in self.orders_in(OrderStatus.NEW):
            try:
                with self.state.transaction():
                    if self.slicer.phase(order.client_order_id) is not None:
                        self.slicer.start(order, at)
                    else:
                        self._send(order, at)
            except BrokerError as exc:
                log.warning(
                    "event=dispatch_deferred client_order_id=%s error=%r",
                    order.client_order_id,
                    str(exc),
                )
                continue
            sent += 1
        if self.slices:
            self.work(at)
        return sent

    def _send(self, order: Order, at: datetime) -> None:
        cid = order.client_order_id
        known = self.broker.get_order(cid) if self.broker.commit_before_send else None
        if known is not None:
            # Sent before a crash: adopt the venue's state, never send it again.
            update = OrderUpdate(cid, OrderStatus.ACCEPTED, broker_order_id=known.broker_order_id)
            log.info("event=order_adopted client_order_id=%s status=%s", cid, known.status)
        else:
            # A BrokerError here is ambiguous (the venue may hold the order): it propagates
            # so the caller keeps the order NEW instead of calling it rejected.
            update = self.broker.submit(order)
        self.state.set_order_status(cid, OrderStatus.SUBMITTED)
        if self.slices:
            start = execution_window(at, timedelta(0))[0]
            self.benchmarks.note_window(order.symbol, cid, start, None, at)
        if update.broker_order_id:
            self.store.set_broker_order_id(cid, update.broker_order_id)
        self.audit_submitted(order, at, order.order_type.upper())
        self.apply(update, at)
        if known is not None:
            self._catch_up(known, at)

    def recover(self, at: datetime) -> int:
        """After a restart: bring every working order up to the venue's state.

        Fills the venue made while we were down are booked from its cumulative filled
        quantity (one catch-up fill at its average price); later stream events for the
        same executions are trimmed by their cumulative quantity, so nothing counts twice.
        Returns the number of orders looked up. Runs inside the caller's transaction.
        """
        working = [
            o
            for status in (
                OrderStatus.SUBMITTED,
                OrderStatus.ACCEPTED,
                OrderStatus.PARTIALLY_FILLED,
            )
            for o in self.orders_in(status)
            if self.slicer.phase(o.client_order_id) is None  # sliced parents live in children
        ]
        for order in working:
            known = self.broker.get_order(order.client_order_id)
            if known is not None:
                self._catch_up(known, at)
        children = self.store.slices_in(OPEN_CHILD)
        for child in children:
            known = self.broker.get_order(child.child_order_id)
            if known is not None:
                self.slicer.catch_up_child(child.child_order_id, known, at)
        return len(working) + len(children)

    def _catch_up(self, known: BrokerOrder, at: datetime) -> None:
        order = self.store.order(known.client_order_id)
        if order is None:
            return
        missing = known.filled_quantity - order.filled_quantity
        if missing > 0 and known.avg_fill_price is not None:
            fill = Fill(
                fill_id=f"{known.client_order_id}-sync-{known.filled_quantity}",
                client_order_id=known.client_order_id,
                symbol=order.symbol,
                side=order.side,
                quantity=missing,
                price=known.avg_fill_price,
                commission=Decimal(0),
                filled_at=at,
            )
            status = (
                OrderStatus.FILLED
                if known.filled_quantity >= order.quantity
                else OrderStatus.PARTIALLY_FILLED
            )
            self.apply(
                OrderUpdate(
                    known.client_order_id,
                    status,
                    fill=fill,
                    cumulative_filled=known.filled_quantity,
                ),
                at,
            )
        elif known.status in (OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED):
            self.apply(OrderUpdate(known.client_order_id, known.status), at)

    def cancel(self, client_order_id: str) -> None:
        """Ask the venue to cancel; the order becomes CANCELED when the venue says so.

        For a sliced parent (or one of its children) this also stops the schedule: no
        further child goes out, and the next `work` closes the parent's window as if it
        had ended (open children cancelled, the parent expired with its unfilled rest).
        Safe inside the caller's transaction.
        """
        child = self.store.slice(client_order_id)
        parent_id = child.parent_id if child is not None else client_order_id
        if self.slicer.cancel(parent_id):
            return  # not dispatched yet: nothing was out
        if child is not None or self.slicer.phase(client_order_id) is None:
            self.broker.cancel(client_order_id)

    def working_parents(self) -> list[str]:
        """Sliced parents still planned or working (what an emergency flatten must stop)."""
        return self.slicer.working_parents()

    def work(self, now: datetime) -> datetime | None:
        """Release sliced children due by `now` and close ended windows (`slicer.work`)."""
        return self.slicer.work(now)

    def next_wakeup(self, now: datetime) -> datetime | None:
        """When the slicer next has something to do (None: no sliced parent is working)."""
        return self.slicer.next_wakeup(now)

    # ----- what comes back -----------------------------------------------------------
    def process_updates(
        self, at: datetime, benchmarks: Mapping[str, Benchmarks] | None = None
    ) -> int:
        """Apply everything the venue reported since the last call; returns the count."""
        updates = self.broker.drain_updates()
        for update in updates:
            self.apply(update, at, benchmarks)
        return len(updates)

    def apply(
        self,
        update: OrderUpdate,
        at: datetime,
        benchmarks: Mapping[str, Benchmarks] | None = None,
    ) -> None:
        """Apply one venue update inside the caller's transaction (repeats are no-ops)."""
        row = self.store.order(update.client_order_id)
        if row is None:
            child = self.store.slice(update.client_order_id)
            if child is None:
                log.warning(
                    "event=update_for_unknown_order client_order_id=%s", update.client_order_id
                )
                return
            self.slicer.apply_child(child, update, at)
            self.tca_if_done(child.parent_id, at, benchmarks)
            return
        if update.fill is not None:
            fill = update.fill
            if update.cumulative_filled is not None:
                # Book only the part of this execution we have not booked yet.
                fresh = min(fill.quantity, update.cumulative_filled - row.filled_quantity)
                fill = replace(fill, quantity=fresh) if fresh > 0 else None
            if fill is not None:
                self.book_fill(row, fill, at)
        else:
            self.move(row, update, at)
        self.tca_if_done(update.client_order_id, at, benchmarks)

    def tca_if_done(
        self, cid: str, at: datetime, benchmarks: Mapping[str, Benchmarks] | None
    ) -> None:
        """Record the parent's TCA once it is in a terminal state (once)."""
        current = self.store.order(cid)
        assert current is not None
        if is_terminal(current.status) and not self.store.has_tca(current.client_order_id):
            bench = (benchmarks or {}).get(current.symbol)
            self._record_tca(current, bench, at)

    def book_fill(
        self, order: Order, fill: Fill, at: datetime, child_id: str | None = None
    ) -> bool:
        """Book one execution of `order` once; `child_id` names the sliced child it hit."""
        if not self.state.record_fill(fill):
            return False  # this execution was already booked
        if is_terminal(order.status) and order.status is not OrderStatus.FILLED:
            # A late execution after a cancel/expiry: book the money, keep the final state.
            log.warning("event=fill_on_closed_order client_order_id=%s", order.client_order_id)
            self.state.set_order_status(order.client_order_id, order.status)
        self.on_fill(fill)
        if child_id is not None:
            # One row per child: its cumulative quantity and average price so far.
            self.store.add_child_fill(
                child_id, order.client_order_id, fill.quantity, fill.price, fill.filled_at
            )
        child = fill.fill_id.removesuffix("-F1")
        if child_id is None and child != order.client_order_id:
            # The paper venue works an algo itself: its child executions are named
            # "<child id>-F1"; the blotter lists each child once.
            self.store.note_venue_child(
                child, order.client_order_id, fill.quantity, fill.price, fill.filled_at
            )
        self.audit.append(
            "ORDER_FILLED",
            self.actor,
            at,
            {
                "client_order_id": fill.client_order_id,
                "fill_id": fill.fill_id,
                "symbol": fill.symbol,
                "side": fill.side.value,
                "quantity": fill.quantity,
                "price": str(fill.price),
                "commission": str(fill.commission),
                **({"child_order_id": child_id} if child_id else {}),
            },
        )
        return True

    def move(self, order: Order, update: OrderUpdate, at: datetime) -> None:
        """Move a parent along the legal state machine (an illegal move is logged, ignored)."""
        if update.status == order.status:
            return
        if not is_legal(order.status, update.status):
            log.warning(
                "event=illegal_transition_ignored client_order_id=%s from=%s to=%s",
                order.client_order_id,
                order.status,
                update.status,
            )
            return
        self.state.set_order_status(order.client_order_id, update.status)
        if update.remaining_quantity or update.reason:
            self.store.set_outcome(order.client_order_id, update.remaining_quantity, update.reason)
        if update.status in (OrderStatus.REJECTED, OrderStatus.CANCELED, OrderStatus.EXPIRED):
            self.audit.append(
                f"ORDER_{update.status.value}",
                self.actor,
                at,
                {
                    "client_order_id": order.client_order_id,
                    "symbol": order.symbol,
                    "reason": update.reason,
                    "unfilled": update.remaining_quantity or order.quantity - order.filled_quantity,
                },
            )

    def audit_submitted(self, order: Order, at: datetime, algo: str, **extra: Any) -> None:
        """ORDER_SUBMITTED for a parent (direct, or sliced with its plan in `extra`)."""
        self.audit.append(
            "ORDER_SUBMITTED",
            self.actor,
            at,
            {
                "client_order_id": order.client_order_id,
                "symbol": order.symbol,
                "side": order.side.value,
                "quantity": order.quantity,
                "algo": algo,
                "reason": order.reason,
                **extra,
            },
        )

    # ----- TCA -----------------------------------------------------------------------
    def _record_tca(self, order: Order, bench: Benchmarks | None, at: datetime) -> None:
        meta = self.store.execution(order.client_order_id)
        if meta is None:
            return  # an order placed before the OMS existed
        fills = self.store.fills_of(order.client_order_id)
        if self.slices:
            bench = self.benchmarks.for_order(order, fills, meta.decision_price, at)
        if bench is None:
            bench = Benchmarks.decision_only(meta.decision_price, fills)
        result = tca.analyse(
            client_order_id=order.client_order_id,
            strategy=meta.strategy,
            symbol=order.symbol,
            side=order.side,
            algo=meta.algo,
            quantity=order.quantity,
            fills=fills,
            decision_price=meta.decision_price,
            arrival_price=bench.arrival,
            vwap_price=bench.vwap,
            end_price=bench.end,
        )
        self.store.add_tca(result, at, bench.arrival_source, bench.vwap_source)
        self.audit.append(
            "TCA_RESULT",
            "tca",
            at,
            {
                "client_order_id": result.client_order_id,
                "strategy": result.strategy,
                "algo": result.algo,
                "filled": f"{result.filled_quantity}/{result.quantity}",
                "arrival_cost_bps": _round(result.arrival_cost_bps),
                "vwap_slippage_bps": _round(result.vwap_slippage_bps),
                "implementation_shortfall_bps": _round(result.implementation_shortfall_bps),
                "arrival_source": bench.arrival_source,
                "vwap_source": bench.vwap_source,
            },
        )

    # ----- reading (the engine's commands turn these dicts into their results) --------
    def orders_in(self, status: OrderStatus) -> list[Order]:
        """Orders in `status`, oldest first."""
        return self.store.orders_in(status)

    def fills_of(self, cid: str) -> list[Fill]:
        """Booked fills of one parent order, in time order."""
        return self.store.fills_of(cid)

    def blotter(self, limit: int = 200) -> list[dict[str, Any]]:
        """Newest parent orders with state, algo, fills, child slices and unfilled rest."""
        return as_dicts(self.store.blotter(limit))

    def children(self, parent_id: str) -> list[dict[str, Any]]:
        """Child orders of one parent: quantity, filled, average fill price and last fill
        time. A parent this OMS slices on the wall clock lists every planned child, filled
        or not, with its state and release time."""
        return as_dicts(self.store.children(parent_id))

    def child_slices(self, parent_id: str) -> list[dict[str, Any]]:
        """The planned children of a sliced parent with their state (for the blotter)."""
        return [c.as_dict() for c in self.store.slices_of(parent_id)]

    def tca_rows(self, limit: int = 200) -> list[dict[str, Any]]:
        """Newest TCA results, one per finished parent order."""
        return as_dicts(self.store.tca_rows(limit))

    def tca_by_strategy(self) -> list[dict[str, Any]]:
        """Per strategy: orders, and notional-weighted mean costs in bps."""
        return as_dicts(self.store.tca_by_strategy())


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
