"""OrderManager: the OMS between the risk manager and a Broker.

It owns an order's life after the decision: persist the parent order (committed before a
venue outside this process sees it), send it once, apply what the venue reports through
the legal state machine, book every fill exactly once, record child slices, and when the
parent is done compute its TCA (stored in the `tca` table and logged as TCA_RESULT).

Idempotency: the client order id is deterministic (see `oms.client_order_id`), the order
row is keyed by it, fills are keyed by the venue's execution id, and after a crash an
order that may have been sent is looked up at the venue by its client id before it is
ever sent again.

Slicing on a wall-clock venue (a Broker with `works_algos` False, e.g. Alpaca): a
VWAP/TWAP parent is not sent itself. `dispatch` plans its children with
`algos.plan_children` (the same `child_quantities` schedule the paper venue works on the
replay clock: VWAP along the volume curve, TWAP equal slices, both capped at the
participation cap x forecast bucket volume) and stores them. `work(now)` releases each
child at its bucket's start as a day market order with the deterministic id
`oms.child_order_id(parent, slice)`, and at the window's end cancels what is still
open; the parent then ends FILLED or EXPIRED with its unfilled rest reported. A child
is marked SENDING in its own committed transaction before it goes out, so after a crash
exactly the children that may have reached the venue are looked up by client id (and
adopted, never re-sent); the rest of the schedule continues at its times. `now` comes
from the caller (the wall clock in the daemon, a fake clock in tests; see `AlgoClock`).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from qgtm.core.enums import OrderStatus, Side
from qgtm.core.types import Fill, Order
from qgtm.engine.audit import AuditLog
from qgtm.engine.execution import tca
from qgtm.engine.execution.algos import BUCKET, Algo, aware, execution_window, plan_children
from qgtm.engine.execution.brokers.base import Broker, BrokerError, BrokerOrder, OrderUpdate
from qgtm.engine.execution.brokers.paper import SessionBar, session_vwap
from qgtm.engine.execution.lifecycle import is_legal, is_terminal
from qgtm.engine.execution.market_data import MarketData, window_vwap
from qgtm.engine.execution.oms import child_order_id
from qgtm.engine.state import StateStore

log = logging.getLogger(__name__)

_ORDER_COLUMNS = (
    "client_order_id, symbol, side, quantity, created_at, decision_date, status, "
    "order_type, reason, filled_quantity"
)


# Child slice states besides OrderStatus values: planned, in flight, never sent.
PLANNED, SENDING, UNSENT = "PLANNED", "SENDING", "UNSENT"
_OPEN_CHILD = ("SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED")
CLOSING_POLL = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class Benchmarks:
    """Prices TCA compares fills against: arrival, market VWAP, end of window.

    `arrival_source` / `vwap_source` name where each came from ("session_bar" for the
    paper venue's daily bar; "quote_mid", "last_trade", "minute_bar", "minute_bar_open",
    "minute_bar_vwap" from a live venue's data; "decision" when there was no data).
    """

    arrival: Decimal
    vwap: Decimal
    end: Decimal
    arrival_source: str = "session_bar"
    vwap_source: str = "session_bar"

    @classmethod
    def from_bar(cls, bar: SessionBar) -> Benchmarks:
        """Open, simulated session VWAP and close of the execution session."""
        return cls(arrival=bar.open, vwap=session_vwap(bar), end=bar.close)


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
        self.audit = audit
        self.broker = broker
        self.on_fill = on_fill
        self.actor = actor
        self.participation_cap = participation_cap
        self.market_data = (
            market_data if market_data is not None else getattr(broker, "market_data", None)
        )
        self.adv_window = adv_window
        self.min_window = min_window

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
        self.conn.execute(
            "INSERT INTO execution_orders (client_order_id, strategy, algo, decision_price) "
            "VALUES (?, ?, ?, ?)",
            (order.client_order_id, strategy, algo.value, str(decision_price)),
        )
        if self.slices and algo is not Algo.MARKET:
            self.conn.execute(
                "INSERT INTO algo_parents (parent_id, algo, adv) VALUES (?, ?, ?)",
                (order.client_order_id, algo.value, adv),
            )
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
                    if self._phase(order.client_order_id) is not None:
                        self._start_algo(order, at)
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
            self._note_window(order.symbol, cid, start, None, at)
        if update.broker_order_id:
            self.conn.execute(
                "UPDATE execution_orders SET broker_order_id = ? WHERE client_order_id = ?",
                (update.broker_order_id, cid),
            )
        self._audit_submitted(order, at, order.order_type.upper())
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
            if self._phase(o.client_order_id) is None  # sliced parents live in children
        ]
        for order in working:
            known = self.broker.get_order(order.client_order_id)
            if known is not None:
                self._catch_up(known, at)
        children = self._children_in(_OPEN_CHILD)
        for child in children:
            known = self.broker.get_order(child["child_order_id"])
            if known is not None:
                self._catch_up_child(child["child_order_id"], known, at)
        return len(working) + len(children)

    def _catch_up(self, known: BrokerOrder, at: datetime) -> None:
        order = self._order_row(known.client_order_id)
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
        child = self._child(client_order_id)
        parent_id = child["parent_id"] if child is not None else client_order_id
        if self._phase(parent_id) == "WAITING":  # not dispatched yet: nothing is out
            parent = self._order_row(parent_id)
            assert parent is not None
            self.conn.execute(
                "UPDATE algo_parents SET phase = 'DONE' WHERE parent_id = ?", (parent_id,)
            )
            self._move(
                parent,
                OrderUpdate(
                    parent_id,
                    OrderStatus.CANCELED,
                    reason="canceled before its window",
                    remaining_quantity=parent.quantity,
                ),
                parent.created_at,
            )
            self._tca_if_done(parent_id, parent.created_at, None)
            return
        if self._phase(parent_id) == "WORKING":
            self.conn.execute(
                "UPDATE algo_parents SET phase = 'STOPPING' WHERE parent_id = ?", (parent_id,)
            )
            log.info("event=algo_stopping client_order_id=%s", parent_id)
        if child is not None or self._phase(client_order_id) is None:
            self.broker.cancel(client_order_id)

    def working_parents(self) -> list[str]:
        """Sliced parents still planned or working (what an emergency flatten must stop)."""
        rows = self.conn.execute(
            "SELECT parent_id FROM algo_parents WHERE phase IN ('WAITING', 'WORKING') "
            "ORDER BY parent_id"
        ).fetchall()
        return [r[0] for r in rows]

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
        row = self._order_row(update.client_order_id)
        if row is None:
            child = self._child(update.client_order_id)
            if child is None:
                log.warning(
                    "event=update_for_unknown_order client_order_id=%s", update.client_order_id
                )
                return
            self._apply_child(child, update, at)
            self._tca_if_done(child["parent_id"], at, benchmarks)
            return
        if update.fill is not None:
            fill = update.fill
            if update.cumulative_filled is not None:
                # Book only the part of this execution we have not booked yet.
                fresh = min(fill.quantity, update.cumulative_filled - row.filled_quantity)
                fill = replace(fill, quantity=fresh) if fresh > 0 else None
            if fill is not None:
                self._book_fill(row, fill, at)
        else:
            self._move(row, update, at)
        self._tca_if_done(update.client_order_id, at, benchmarks)

    def _tca_if_done(
        self, cid: str, at: datetime, benchmarks: Mapping[str, Benchmarks] | None
    ) -> None:
        current = self._order_row(cid)
        assert current is not None
        if is_terminal(current.status) and not self._has_tca(current.client_order_id):
            bench = (benchmarks or {}).get(current.symbol)
            self._record_tca(current, bench, at)

    def _book_fill(
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
            self.conn.execute(
                "INSERT INTO child_orders (child_order_id, parent_id, quantity, price, filled_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(child_order_id) DO UPDATE SET "
                "price = CAST((CAST(price AS REAL) * quantity + ? * ?) / (quantity + ?) AS TEXT), "
                "quantity = quantity + excluded.quantity, filled_at = excluded.filled_at",
                (
                    child_id,
                    order.client_order_id,
                    fill.quantity,
                    str(fill.price),
                    fill.filled_at.isoformat(),
                    float(fill.price),
                    fill.quantity,
                    fill.quantity,
                ),
            )
        child = fill.fill_id.removesuffix("-F1")
        if child_id is None and child != order.client_order_id:
            self.conn.execute(
                "INSERT OR IGNORE INTO child_orders (child_order_id, parent_id, quantity, price, "
                "filled_at) VALUES (?, ?, ?, ?, ?)",
                (
                    child,
                    order.client_order_id,
                    fill.quantity,
                    str(fill.price),
                    fill.filled_at.isoformat(),
                ),
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

    def _move(self, order: Order, update: OrderUpdate, at: datetime) -> None:
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
            self.conn.execute(
                "UPDATE execution_orders SET remaining_quantity = ?, note = ? "
                "WHERE client_order_id = ?",
                (update.remaining_quantity, update.reason, order.client_order_id),
            )
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

    # ----- slicing on the wall clock ---------------------------------------------------
    def _phase(self, parent_id: str) -> str | None:
        row = self.conn.execute(
            "SELECT phase FROM algo_parents WHERE parent_id = ?", (parent_id,)
        ).fetchone()
        return None if row is None else row[0]

    def _start_algo(self, order: Order, at: datetime) -> None:
        """Plan a sliced parent's children (inside the caller's transaction); sends nothing."""
        cid = order.client_order_id
        algo, adv = self.conn.execute(
            "SELECT algo, adv FROM algo_parents WHERE parent_id = ?", (cid,)
        ).fetchone()
        if adv is None and self.market_data is not None:
            adv = self.market_data.average_daily_volume(order.symbol, at, self.adv_window)
        plan = plan_children(
            Algo(algo),
            order.quantity,
            at,
            adv=adv,
            cap=self.participation_cap,
            min_window=self.min_window,
        )
        for child in plan.children:
            self.conn.execute(
                "INSERT OR IGNORE INTO child_slices (child_order_id, parent_id, slice_no, "
                "release_at, quantity) VALUES (?, ?, ?, ?, ?)",
                (
                    child_order_id(cid, child.slice_no),
                    cid,
                    child.slice_no,
                    _utc(child.release_at),
                    child.quantity,
                ),
            )
        self.conn.execute(
            "UPDATE algo_parents SET adv = ?, window_start = ?, window_end = ?, "
            "capped_remainder = ?, phase = 'WORKING' WHERE parent_id = ?",
            (adv, _utc(plan.window_start), _utc(plan.window_end), plan.capped_remainder, cid),
        )
        self.state.set_order_status(cid, OrderStatus.SUBMITTED)
        self._note_window(order.symbol, cid, plan.window_start, plan.window_end, at)
        self._audit_submitted(
            order,
            at,
            algo,
            slices=len(plan.children),
            window_start=plan.window_start.isoformat(),
            window_end=plan.window_end.isoformat(),
            capped_remainder=plan.capped_remainder,
            adv=adv,
        )

    def _audit_submitted(self, order: Order, at: datetime, algo: str, **extra: Any) -> None:
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

    def _note_window(
        self,
        symbol: str,
        cid: str,
        start: datetime,
        end: datetime | None,
        at: datetime,
    ) -> None:
        """Remember the execution window, and the market price if it trades right now."""
        arrival = None
        if self.market_data is not None and aware(at) >= start:
            arrival = self.market_data.arrival(symbol)
        self.conn.execute(
            "INSERT OR IGNORE INTO order_benchmarks (client_order_id, arrival_price, "
            "arrival_source, window_start, window_end) VALUES (?, ?, ?, ?, ?)",
            (
                cid,
                None if arrival is None else str(arrival.price),
                "" if arrival is None else arrival.source,
                _utc(start),
                None if end is None else _utc(end),
            ),
        )

    def work(self, now: datetime) -> datetime | None:
        """Release the children due by `now`; close windows that ended by `now`.

        Call outside any transaction (each child is committed SENDING, then sent, then
        its answer committed). Returns when there is next something to do (None: no
        sliced parent is working). A venue outage leaves the child SENDING; the next call
        looks it up before sending it again.
        """
        now = aware(now)
        rows = self.conn.execute(
            "SELECT a.parent_id, a.phase, a.window_end FROM algo_parents a "
            "JOIN orders o ON o.client_order_id = a.parent_id "
            "WHERE a.phase IN ('WORKING', 'CLOSING', 'STOPPING') "
            "ORDER BY a.window_start, a.parent_id"
        ).fetchall()
        for parent_id, phase, window_end in rows:
            try:
                if phase == "STOPPING" or (
                    phase == "WORKING" and now >= datetime.fromisoformat(window_end)
                ):
                    self._close_window(parent_id, now)
                elif phase == "WORKING":
                    self._release_due(parent_id, now)
                else:
                    self._poll_closing(parent_id, now)
            except BrokerError as exc:
                log.warning(
                    "event=algo_work_deferred client_order_id=%s error=%r", parent_id, str(exc)
                )
        return self.next_wakeup(now)

    def next_wakeup(self, now: datetime) -> datetime | None:
        """The next child release or window end; soon while anything is in flight."""
        now = aware(now)
        if self.conn.execute(
            "SELECT 1 FROM algo_parents a JOIN child_slices c ON c.parent_id = a.parent_id "
            "WHERE a.phase IN ('CLOSING', 'STOPPING') OR c.status = ? LIMIT 1",
            (SENDING,),
        ).fetchone():
            return now + CLOSING_POLL
        row = self.conn.execute(
            "SELECT min(t) FROM ("
            "SELECT c.release_at AS t FROM child_slices c JOIN algo_parents a "
            "ON a.parent_id = c.parent_id WHERE a.phase = 'WORKING' AND c.status = ? "
            "UNION ALL SELECT window_end FROM algo_parents WHERE phase = 'WORKING')",
            (PLANNED,),
        ).fetchone()
        return None if row[0] is None else datetime.fromisoformat(row[0])

    def _release_due(self, parent_id: str, now: datetime) -> None:
        parent = self._order_row(parent_id)
        assert parent is not None
        for child in self._children_of(parent_id):
            if child["status"] == SENDING:
                self._send_child(parent, child, now, look_first=True)
            elif child["status"] == PLANNED and child["release_at"] <= now:
                self._send_child(parent, child, now, look_first=False)

    def _send_child(
        self, parent: Order, child: dict[str, Any], now: datetime, *, look_first: bool
    ) -> None:
        """SENDING committed first; then the venue; then its answer (see `work`)."""
        cid = child["child_order_id"]
        if not look_first:
            with self.state.transaction():
                self.conn.execute(
                    "UPDATE child_slices SET status = ?, sent_at = ? WHERE child_order_id = ?",
                    (SENDING, _utc(now), cid),
                )
        known = self.broker.get_order(cid) if look_first else None
        if known is not None:
            update = OrderUpdate(cid, OrderStatus.ACCEPTED, broker_order_id=known.broker_order_id)
        else:
            order = replace(
                parent,
                client_order_id=cid,
                quantity=child["quantity"],
                created_at=now,
                status=OrderStatus.NEW,
                order_type="market",
                filled_quantity=0,
            )
            update = self.broker.submit(order)  # BrokerError: stays SENDING, looked up later
        with self.state.transaction():
            self.conn.execute(
                "UPDATE child_slices SET status = 'SUBMITTED', broker_order_id = ? "
                "WHERE child_order_id = ?",
                (update.broker_order_id, cid),
            )
            self.audit.append(
                "CHILD_SUBMITTED",
                self.actor,
                now,
                {
                    "client_order_id": parent.client_order_id,
                    "child_order_id": cid,
                    "slice": child["slice_no"],
                    "quantity": child["quantity"],
                    "release_at": child["release_at"].isoformat(),
                    "adopted": known is not None,
                },
            )
            self.apply(update, now)
            if known is not None:
                self._catch_up_child(cid, known, now)

    def _close_window(self, parent_id: str, now: datetime) -> None:
        """End of the window: nothing more goes out; what is open is cancelled."""
        for child in self._children_of(parent_id):
            if child["status"] != SENDING:
                continue
            known = self.broker.get_order(child["child_order_id"])
            with self.state.transaction():
                if known is None:
                    self._set_child(child["child_order_id"], UNSENT)
                else:
                    self._set_child(child["child_order_id"], "SUBMITTED", known.broker_order_id)
                    self._catch_up_child(child["child_order_id"], known, now)
        with self.state.transaction():
            self.conn.execute(
                "UPDATE child_slices SET status = ? WHERE parent_id = ? AND status = ?",
                (UNSENT, parent_id, PLANNED),
            )
            self.conn.execute(
                "UPDATE algo_parents SET phase = 'CLOSING' WHERE parent_id = ?", (parent_id,)
            )
            open_children = [c for c in self._children_of(parent_id) if c["status"] in _OPEN_CHILD]
            parent = self._order_row(parent_id)
            assert parent is not None
            self.audit.append(
                "ALGO_WINDOW_CLOSED",
                self.actor,
                now,
                {
                    "client_order_id": parent_id,
                    "filled": parent.filled_quantity,
                    "unfilled": parent.quantity - parent.filled_quantity,
                    "unsent": sum(
                        c["quantity"] for c in self._children_of(parent_id) if c["status"] == UNSENT
                    ),
                    "canceling": [c["child_order_id"] for c in open_children],
                },
            )
        for child in open_children:
            self.broker.cancel(child["child_order_id"])
        with self.state.transaction():
            self._finish_if_closed(parent_id, now)

    def _poll_closing(self, parent_id: str, now: datetime) -> None:
        """A closing parent whose cancels are not confirmed yet: ask the venue directly."""
        for child in self._children_of(parent_id):
            if child["status"] not in _OPEN_CHILD:
                continue
            known = self.broker.get_order(child["child_order_id"])
            if known is None:
                continue
            if not is_terminal(known.status):  # the cancel is not through yet: ask again
                self.broker.cancel(child["child_order_id"])
            with self.state.transaction():
                self._catch_up_child(child["child_order_id"], known, now)
        with self.state.transaction():
            self._finish_if_closed(parent_id, now)

    def _finish_if_closed(self, parent_id: str, at: datetime) -> None:
        """A closing parent whose children are all done ends FILLED or EXPIRED (+ TCA)."""
        if self._phase(parent_id) != "CLOSING":
            return
        if any(
            c["status"] in (*_OPEN_CHILD, PLANNED, SENDING) for c in self._children_of(parent_id)
        ):
            return
        self.conn.execute(
            "UPDATE algo_parents SET phase = 'DONE' WHERE parent_id = ?", (parent_id,)
        )
        parent = self._order_row(parent_id)
        assert parent is not None
        rest = parent.quantity - parent.filled_quantity
        if rest > 0 and not is_terminal(parent.status):
            self._move(
                parent,
                OrderUpdate(
                    parent_id,
                    OrderStatus.EXPIRED,
                    reason=f"{rest} of {parent.quantity} unfilled at the end of the window",
                    remaining_quantity=rest,
                ),
                at,
            )
        self._tca_if_done(parent_id, at, None)

    def _apply_child(self, child: dict[str, Any], update: OrderUpdate, at: datetime) -> None:
        """A venue update about one child, booked against its parent (repeats are no-ops)."""
        cid = child["child_order_id"]
        parent = self._order_row(child["parent_id"])
        assert parent is not None
        if update.broker_order_id and not child["broker_order_id"]:
            self.conn.execute(
                "UPDATE child_slices SET broker_order_id = ? WHERE child_order_id = ?",
                (update.broker_order_id, cid),
            )
        current = child["status"] if child["status"] in OrderStatus.__members__ else "NEW"
        if update.fill is not None:
            fill = update.fill
            fresh = fill.quantity
            if update.cumulative_filled is not None:
                fresh = min(fresh, update.cumulative_filled - child["filled_quantity"])
            if fresh > 0:
                fill = replace(fill, quantity=fresh, client_order_id=parent.client_order_id)
                if self._book_fill(parent, fill, at, child_id=cid):
                    self.conn.execute(
                        "UPDATE child_slices SET filled_quantity = filled_quantity + ?, "
                        "filled_notional = ? WHERE child_order_id = ?",
                        (fresh, str(Decimal(child["filled_notional"]) + fresh * fill.price), cid),
                    )
        if update.status.value != current and is_legal(OrderStatus(current), update.status):
            self._set_child(cid, update.status.value)
            if update.status is OrderStatus.REJECTED:
                self.audit.append(
                    "CHILD_REJECTED",
                    self.actor,
                    at,
                    {
                        "client_order_id": parent.client_order_id,
                        "child_order_id": cid,
                        "quantity": child["quantity"],
                        "reason": update.reason,
                    },
                )
        parent = self._order_row(parent.client_order_id)
        assert parent is not None
        if parent.status is OrderStatus.SUBMITTED and update.status is OrderStatus.ACCEPTED:
            self.state.set_order_status(parent.client_order_id, OrderStatus.ACCEPTED)
        if parent.status is OrderStatus.FILLED:
            self.conn.execute(
                "UPDATE algo_parents SET phase = 'DONE' WHERE parent_id = ?",
                (parent.client_order_id,),
            )
        else:
            self._finish_if_closed(parent.client_order_id, at)

    def _catch_up_child(self, cid: str, known: BrokerOrder, at: datetime) -> None:
        """Book what the venue filled of a child that we have not booked (REST look-up)."""
        child = self._child(cid)
        if child is None:
            return
        missing = known.filled_quantity - child["filled_quantity"]
        if missing > 0 and known.avg_fill_price is not None:
            parent = self._order_row(child["parent_id"])
            assert parent is not None
            notional = known.avg_fill_price * known.filled_quantity
            price = ((notional - Decimal(child["filled_notional"])) / missing).quantize(
                Decimal("0.0001")
            )
            fill = Fill(
                fill_id=f"{cid}-sync-{known.filled_quantity}",
                client_order_id=cid,
                symbol=parent.symbol,
                side=parent.side,
                quantity=missing,
                price=price,
                commission=Decimal(0),
                filled_at=at,
            )
            status = (
                OrderStatus.FILLED
                if known.filled_quantity >= child["quantity"]
                else OrderStatus.PARTIALLY_FILLED
            )
            self.apply(
                OrderUpdate(cid, status, fill=fill, cumulative_filled=known.filled_quantity), at
            )
        elif known.status is not OrderStatus.SUBMITTED:
            # Nothing left to book (a fill the stream already brought, or none): the
            # venue's state still moves the child (e.g. to FILLED or CANCELED).
            self.apply(OrderUpdate(cid, known.status), at)

    def _set_child(self, cid: str, status: str, broker_order_id: str | None = None) -> None:
        self.conn.execute(
            "UPDATE child_slices SET status = ?, broker_order_id = coalesce(?, broker_order_id) "
            "WHERE child_order_id = ?",
            (status, broker_order_id, cid),
        )

    def _child(self, cid: str) -> dict[str, Any] | None:
        rows = self._child_rows("WHERE child_order_id = ?", (cid,))
        return rows[0] if rows else None

    def _children_of(self, parent_id: str) -> list[dict[str, Any]]:
        return self._child_rows("WHERE parent_id = ? ORDER BY slice_no", (parent_id,))

    def _children_in(self, statuses: tuple[str, ...]) -> list[dict[str, Any]]:
        marks = ", ".join("?" for _ in statuses)
        return self._child_rows(
            f"WHERE status IN ({marks}) ORDER BY parent_id, slice_no", tuple(statuses)
        )

    def _child_rows(self, where: str, args: tuple) -> list[dict[str, Any]]:
        cursor = self.conn.execute(
            "SELECT child_order_id, parent_id, slice_no, release_at, quantity, status, "
            f"broker_order_id, filled_quantity, filled_notional, sent_at FROM child_slices {where}",
            args,
        )
        names = [d[0] for d in cursor.description]
        out = []
        for row in cursor.fetchall():
            item = dict(zip(names, row, strict=True))
            item["release_at"] = datetime.fromisoformat(item["release_at"])
            out.append(item)
        return out

    def child_slices(self, parent_id: str) -> list[dict[str, Any]]:
        """The planned children of a sliced parent with their state (for the blotter)."""
        return [
            {**c, "release_at": c["release_at"].isoformat()} for c in self._children_of(parent_id)
        ]

    def _venue_benchmarks(
        self, order: Order, fills: list[Fill], decision: Decimal, at: datetime
    ) -> Benchmarks:
        """Arrival, VWAP and end price from the venue's data over the execution window.

        Arrival: the price captured when the order reached a trading market (quote mid /
        last trade / minute bar), else the first minute bar's open in the window. VWAP:
        `window_vwap` of the window's minute bars (the window ends at its planned end, or
        at the last fill for a market order). End: the last bar's close. Each falls back to
        the decision price (end: the last fill) when the data is missing.
        """
        row = self.conn.execute(
            "SELECT arrival_price, arrival_source, window_start, window_end "
            "FROM order_benchmarks WHERE client_order_id = ?",
            (order.client_order_id,),
        ).fetchone()
        at = aware(at)
        last_fill = fills[-1].price if fills else decision
        if row is None:
            return Benchmarks(decision, decision, last_fill, "decision", "decision")
        arrival_price, arrival_source, start_text, end_text = row
        start = datetime.fromisoformat(start_text)
        if end_text is not None:
            end = datetime.fromisoformat(end_text)
        else:
            end = max([start, *(aware(f.filled_at) for f in fills)]) + timedelta(minutes=1)
        bars = []
        if self.market_data is not None:
            bars = self.market_data.minute_bars(order.symbol, start, min(end, max(at, start)))
            if not bars and end > at:
                bars = self.market_data.minute_bars(order.symbol, start, end)
        if arrival_price is not None:
            arrival, a_source = Decimal(arrival_price), arrival_source
        elif bars:
            arrival, a_source = bars[0].open, "minute_bar_open"
        else:
            arrival, a_source = decision, "decision"
        vwap = window_vwap(bars)
        v_source = "minute_bar_vwap" if vwap is not None else "decision"
        end_price = bars[-1].close if bars else last_fill
        return Benchmarks(
            arrival, vwap if vwap is not None else decision, end_price, a_source, v_source
        )

    # ----- TCA -----------------------------------------------------------------------
    def _has_tca(self, cid: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM tca WHERE client_order_id = ?", (cid,)).fetchone()
        return row is not None

    def _record_tca(self, order: Order, bench: Benchmarks | None, at: datetime) -> None:
        meta = self.conn.execute(
            "SELECT strategy, algo, decision_price FROM execution_orders WHERE client_order_id = ?",
            (order.client_order_id,),
        ).fetchone()
        if meta is None:
            return  # an order placed before the OMS existed
        fills = self.fills_of(order.client_order_id)
        decision = Decimal(meta[2])
        if self.slices:
            bench = self._venue_benchmarks(order, fills, decision, at)
        if bench is None:
            last = fills[-1].price if fills else decision
            bench = Benchmarks(decision, decision, last, "decision", "decision")
        result = tca.analyse(
            client_order_id=order.client_order_id,
            strategy=meta[0],
            symbol=order.symbol,
            side=order.side,
            algo=meta[1],
            quantity=order.quantity,
            fills=fills,
            decision_price=decision,
            arrival_price=bench.arrival,
            vwap_price=bench.vwap,
            end_price=bench.end,
        )
        self.conn.execute(
            "INSERT INTO tca (client_order_id, strategy, symbol, side, algo, quantity, "
            "filled_quantity, avg_fill_price, decision_price, arrival_price, vwap_price, "
            "end_price, commission, arrival_cost_bps, vwap_slippage_bps, "
            "implementation_shortfall_bps, computed_at, arrival_source, vwap_source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                result.client_order_id,
                result.strategy,
                result.symbol,
                result.side.value,
                result.algo,
                result.quantity,
                result.filled_quantity,
                result.avg_fill_price,
                result.decision_price,
                result.arrival_price,
                result.vwap_price,
                result.end_price,
                result.commission,
                result.arrival_cost_bps,
                result.vwap_slippage_bps,
                result.implementation_shortfall_bps,
                at.isoformat(),
                bench.arrival_source,
                bench.vwap_source,
            ),
        )
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

    # ----- reading -------------------------------------------------------------------
    def orders_in(self, status: OrderStatus) -> list[Order]:
        """Orders in `status`, oldest first."""
        rows = self.conn.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE status = ? "
            "ORDER BY created_at, client_order_id",
            (status.value,),
        ).fetchall()
        return [_order(r) for r in rows]

    def _order_row(self, cid: str) -> Order | None:
        row = self.conn.execute(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE client_order_id = ?", (cid,)
        ).fetchone()
        return None if row is None else _order(row)

    def fills_of(self, cid: str) -> list[Fill]:
        """Booked fills of one parent order, in time order."""
        rows = self.conn.execute(
            "SELECT fill_id, client_order_id, symbol, side, quantity, price, commission, "
            "filled_at FROM fills WHERE client_order_id = ? ORDER BY filled_at, fill_id",
            (cid,),
        ).fetchall()
        return [
            Fill(
                r[0],
                r[1],
                r[2],
                Side(r[3]),
                r[4],
                Decimal(r[5]),
                Decimal(r[6]),
                datetime.fromisoformat(r[7]),
            )
            for r in rows
        ]

    def blotter(self, limit: int = 200) -> list[dict[str, Any]]:
        """Newest parent orders with state, algo, fills, child slices and unfilled rest."""
        rows = self.conn.execute(
            "SELECT o.client_order_id, o.decision_date, o.symbol, o.side, o.quantity, o.status, "
            "o.filled_quantity, o.avg_fill_price, coalesce(e.algo, upper(o.order_type)), "
            "coalesce(e.strategy, ''), coalesce(e.remaining_quantity, 0), coalesce(e.note, ''), "
            "(SELECT count(*) FROM child_orders c WHERE c.parent_id = o.client_order_id) "
            "FROM orders o LEFT JOIN execution_orders e USING (client_order_id) "
            "ORDER BY o.created_at DESC, o.client_order_id LIMIT ?",
            (limit,),
        ).fetchall()
        keys = (
            "client_order_id",
            "decision_date",
            "symbol",
            "side",
            "quantity",
            "status",
            "filled_quantity",
            "avg_fill_price",
            "algo",
            "strategy",
            "unfilled",
            "note",
            "children",
        )
        out = []
        for r in rows:
            item = dict(zip(keys, r, strict=True))
            item["avg_fill_price"] = None if r[7] is None else float(r[7])
            out.append(item)
        return out

    def children(self, parent_id: str) -> list[dict[str, Any]]:
        """Child orders of one parent: quantity, filled, average fill price and last fill
        time. A parent this OMS slices on the wall clock lists every planned child, filled
        or not, with its state and release time."""
        rows = self.conn.execute(
            "SELECT child_order_id, quantity, price, filled_at FROM child_orders "
            "WHERE parent_id = ? ORDER BY filled_at",
            (parent_id,),
        ).fetchall()
        filled = {
            r[0]: {
                "child_order_id": r[0],
                "quantity": r[1],
                "filled": r[1],
                "price": float(r[2]),
                "filled_at": r[3],
                "status": "FILLED",
                "release_at": None,
            }
            for r in rows
        }
        planned = self._children_of(parent_id)
        if not planned:
            return list(filled.values())
        out = []
        for c in planned:
            fill = filled.get(c["child_order_id"], {})
            out.append(
                {
                    "child_order_id": c["child_order_id"],
                    "quantity": c["quantity"],
                    "filled": fill.get("filled", 0),
                    "price": fill.get("price"),
                    "filled_at": fill.get("filled_at"),
                    "status": c["status"],
                    "release_at": c["release_at"].isoformat(),
                }
            )
        return out

    def tca_rows(self, limit: int = 200) -> list[dict[str, Any]]:
        """Newest TCA results, one per finished parent order."""
        cursor = self.conn.execute(
            "SELECT * FROM tca ORDER BY computed_at DESC, client_order_id LIMIT ?", (limit,)
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    def tca_by_strategy(self) -> list[dict[str, Any]]:
        """Per strategy: orders, and notional-weighted mean costs in bps."""
        rows = self.conn.execute(
            "SELECT strategy, count(*), sum(filled_quantity * decision_price), "
            "sum(arrival_cost_bps * filled_quantity * decision_price), "
            "sum(vwap_slippage_bps * filled_quantity * decision_price), "
            "sum(implementation_shortfall_bps * quantity * decision_price), "
            "sum(quantity * decision_price) FROM tca GROUP BY strategy ORDER BY strategy"
        ).fetchall()
        out = []
        for strategy, n, filled_notional, arr, vw, shortfall, notional in rows:
            filled_notional = filled_notional or 0.0
            out.append(
                {
                    "strategy": strategy,
                    "orders": n,
                    "arrival_cost_bps": arr / filled_notional if filled_notional else None,
                    "vwap_slippage_bps": vw / filled_notional if filled_notional else None,
                    "implementation_shortfall_bps": shortfall / notional if notional else None,
                }
            )
        return out


class AlgoClock:
    """Drives `OrderManager.work` on a clock: the wall clock live, a fake one in tests.

    Each tick applies what the venue reported (`process_updates`, in its own
    transaction), then releases due children; it then sleeps until the next release, at
    most `idle` seconds. `lock` (optional) is held while the OMS works, so a caller that
    steps the engine in another thread can share the OMS.
    """

    def __init__(
        self,
        oms: OrderManager,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None] = time.sleep,
        idle: float = 30.0,
        lock: Any = None,
    ) -> None:
        self.oms = oms
        self.clock = clock
        self.sleep = sleep
        self.idle = idle
        self.lock = lock

    def tick(self) -> datetime | None:
        """One round: book venue updates, release due children; the next wake-up time."""
        now = self.clock()
        if self.lock is not None:
            with self.lock:
                return self._tick(now)
        return self._tick(now)

    def _tick(self, now: datetime) -> datetime | None:
        with self.oms.state.transaction():
            self.oms.process_updates(now)
        return self.oms.work(now)

    def run_until(self, deadline: datetime, stop: Callable[[], bool] = lambda: False) -> None:
        """Tick until `deadline` (or `stop()`), sleeping between ticks."""
        while not stop():
            now = self.clock()
            if now >= deadline:
                return
            wake = self.tick()
            now = self.clock()
            wait = self.idle if wake is None else (wake - now).total_seconds()
            self.sleep(max(min(wait, self.idle, (deadline - now).total_seconds()), 0.001))


def _utc(at: datetime) -> str:
    """ISO text of an aware time in UTC (so stored times compare as text and as values)."""
    return aware(at).astimezone(UTC).isoformat()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _order(r: tuple) -> Order:
    return Order(
        client_order_id=r[0],
        symbol=r[1],
        side=Side(r[2]),
        quantity=r[3],
        created_at=datetime.fromisoformat(r[4]),
        decision_date=date.fromisoformat(r[5]),
        status=OrderStatus(r[6]),
        order_type=r[7],
        reason=r[8],
        filled_quantity=r[9],
    )
