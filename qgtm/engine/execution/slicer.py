"""Slicing VWAP/TWAP parents on the wall clock, for a venue that does not work algos.

A parent on such a venue (a Broker with `works_algos` False, e.g. Alpaca) is not sent
itself. When it is dispatched, `start` plans its children with `algos.plan_children`
(the same `child_quantities` schedule the paper venue works on the replay clock: VWAP
along the volume curve, TWAP equal slices, both capped at the participation cap x
forecast bucket volume) and stores them. `work(now)` releases each child at its bucket's
start as a day market order with the deterministic id `oms.child_order_id(parent,
slice)`, and at the window's end cancels what is still open; the parent then ends
FILLED or EXPIRED with its unfilled rest reported.

Crash safety: a child is marked SENDING in its own committed transaction before it goes
out, so after a crash exactly the children that may have reached the venue are looked
up by client id (and adopted, never re-sent); the rest of the schedule continues at its
times. `now` always comes from the caller: the wall clock in the daemon, a fake clock in
tests (`AlgoClock` drives `work` on either).

A parent's phase (table `algo_parents`): WAITING (placed, not dispatched) -> WORKING
(children planned, released on time) -> CLOSING (window over, cancels sent) -> DONE;
an operator's cancel moves WORKING to STOPPING, which closes the window at once.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from qgtm.core.enums import OrderStatus
from qgtm.core.types import Fill, Order
from qgtm.engine.audit import AuditLog
from qgtm.engine.execution.algos import Algo, aware, plan_children
from qgtm.engine.execution.benchmarks import Benchmarks, VenueBenchmarks, utc_text
from qgtm.engine.execution.brokers.base import Broker, BrokerError, BrokerOrder, OrderUpdate
from qgtm.engine.execution.lifecycle import is_legal, is_terminal
from qgtm.engine.execution.market_data import MarketData
from qgtm.engine.execution.oms import child_order_id
from qgtm.engine.execution.store import ChildSliceState, ExecutionStore
from qgtm.engine.state import StateStore

log = logging.getLogger(__name__)

# Child slice states besides OrderStatus values: planned, in flight, never sent.
PLANNED, SENDING, UNSENT = "PLANNED", "SENDING", "UNSENT"
OPEN_CHILD = ("SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED")
CLOSING_POLL = timedelta(seconds=5)


class SlicingOms(Protocol):
    """What the slicer needs of the OMS it books through (`OrderManager` is the one),
    stated here so the slicer does not import the OMS that owns it."""

    conn: sqlite3.Connection
    store: ExecutionStore
    state: StateStore
    audit: AuditLog
    broker: Broker
    actor: str
    market_data: MarketData | None
    benchmarks: VenueBenchmarks

    def apply(
        self,
        update: OrderUpdate,
        at: datetime,
        benchmarks: Mapping[str, Benchmarks] | None = None,
    ) -> None:
        """Book one venue update on its order."""

    def move(self, order: Order, update: OrderUpdate, at: datetime) -> None:
        """Move an order to the update's status, if the lifecycle allows it."""

    def book_fill(
        self, order: Order, fill: Fill, at: datetime, child_id: str | None = None
    ) -> bool:
        """Book a fill once; False when it was already booked."""

    def tca_if_done(
        self, cid: str, at: datetime, benchmarks: Mapping[str, Benchmarks] | None
    ) -> None:
        """Record TCA for an order that reached a final state."""

    def audit_submitted(self, order: Order, at: datetime, algo: str, **extra: Any) -> None:
        """Audit an order's submission."""

    def process_updates(
        self, at: datetime, benchmarks: Mapping[str, Benchmarks] | None = None
    ) -> int:
        """Apply every update the broker has queued; how many."""

    def work(self, now: datetime) -> datetime | None:
        """Release due children; the next wake-up time."""


class WallClockSlicer:
    """Plans, releases and closes the children of sliced parents (see module docstring).

    It books through its OMS (`apply`, `book_fill`, `move`, `tca_if_done`), so a child's
    fill lands on its parent by the same rules as any other fill.
    """

    def __init__(
        self,
        oms: SlicingOms,
        *,
        participation_cap: float,
        adv_window: int,
        min_window: timedelta,
    ) -> None:
        self.oms = oms
        self.conn = oms.conn
        self.store = oms.store
        self.participation_cap = participation_cap
        self.adv_window = adv_window
        self.min_window = min_window

    # ----- parents -------------------------------------------------------------------
    def register(self, parent_id: str, algo: Algo, adv: float | None) -> None:
        """A newly placed parent to slice (WAITING until dispatched)."""
        self.conn.execute(
            "INSERT INTO algo_parents (parent_id, algo, adv) VALUES (?, ?, ?)",
            (parent_id, algo.value, adv),
        )

    def phase(self, parent_id: str) -> str | None:
        """The parent's phase, or None if this slicer does not work it."""
        row = self.conn.execute(
            "SELECT phase FROM algo_parents WHERE parent_id = ?", (parent_id,)
        ).fetchone()
        return None if row is None else row[0]

    def _set_phase(self, parent_id: str, phase: str) -> None:
        self.conn.execute(
            "UPDATE algo_parents SET phase = ? WHERE parent_id = ?", (phase, parent_id)
        )

    def working_parents(self) -> list[str]:
        """Sliced parents still planned or working (what an emergency flatten must stop)."""
        rows = self.conn.execute(
            "SELECT parent_id FROM algo_parents WHERE phase IN ('WAITING', 'WORKING') "
            "ORDER BY parent_id"
        ).fetchall()
        return [r[0] for r in rows]

    def start(self, order: Order, at: datetime) -> None:
        """Plan a sliced parent's children (inside the caller's transaction); sends nothing."""
        cid = order.client_order_id
        algo, adv = self.conn.execute(
            "SELECT algo, adv FROM algo_parents WHERE parent_id = ?", (cid,)
        ).fetchone()
        market_data = self.oms.market_data
        if adv is None and market_data is not None:
            adv = market_data.average_daily_volume(order.symbol, at, self.adv_window)
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
                    utc_text(child.release_at),
                    child.quantity,
                ),
            )
        window = (utc_text(plan.window_start), utc_text(plan.window_end))
        self.conn.execute(
            "UPDATE algo_parents SET adv = ?, window_start = ?, window_end = ?, "
            "capped_remainder = ?, phase = 'WORKING' WHERE parent_id = ?",
            (adv, *window, plan.capped_remainder, cid),
        )
        self.oms.state.set_order_status(cid, OrderStatus.SUBMITTED)
        self.oms.benchmarks.note_window(order.symbol, cid, plan.window_start, plan.window_end, at)
        self.oms.audit_submitted(
            order,
            at,
            algo,
            slices=len(plan.children),
            window_start=plan.window_start.isoformat(),
            window_end=plan.window_end.isoformat(),
            capped_remainder=plan.capped_remainder,
            adv=adv,
        )

    def cancel(self, parent_id: str) -> bool:
        """Stop a parent's schedule; True if nothing of it was out (the OMS cancelled it).

        WAITING: the parent is cancelled here with its whole quantity unfilled. WORKING:
        it becomes STOPPING, and the next `work` closes its window.
        """
        phase = self.phase(parent_id)
        if phase == "WAITING":
            parent = self.store.order(parent_id)
            assert parent is not None
            self._set_phase(parent_id, "DONE")
            self.oms.move(
                parent,
                OrderUpdate(
                    parent_id,
                    OrderStatus.CANCELED,
                    reason="canceled before its window",
                    remaining_quantity=parent.quantity,
                ),
                parent.created_at,
            )
            self.oms.tca_if_done(parent_id, parent.created_at, None)
            return True
        if phase == "WORKING":
            self._set_phase(parent_id, "STOPPING")
            log.info("event=algo_stopping client_order_id=%s", parent_id)
        return False

    # ----- the clock -----------------------------------------------------------------
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
        parent = self.store.order(parent_id)
        assert parent is not None
        for child in self.store.slices_of(parent_id):
            if child.status == SENDING:
                self._send_child(parent, child, now, look_first=True)
            elif child.status == PLANNED and child.release_at <= now:
                self._send_child(parent, child, now, look_first=False)

    def _send_child(
        self, parent: Order, child: ChildSliceState, now: datetime, *, look_first: bool
    ) -> None:
        """SENDING committed first; then the venue; then its answer (see `work`)."""
        cid = child.child_order_id
        state, broker = self.oms.state, self.oms.broker
        if not look_first:
            with state.transaction():
                self.conn.execute(
                    "UPDATE child_slices SET status = ?, sent_at = ? WHERE child_order_id = ?",
                    (SENDING, utc_text(now), cid),
                )
        known = broker.get_order(cid) if look_first else None
        if known is not None:
            update = OrderUpdate(cid, OrderStatus.ACCEPTED, broker_order_id=known.broker_order_id)
        else:
            order = replace(
                parent,
                client_order_id=cid,
                quantity=child.quantity,
                created_at=now,
                status=OrderStatus.NEW,
                order_type="market",
                filled_quantity=0,
            )
            update = broker.submit(order)  # BrokerError: stays SENDING, looked up later
        with state.transaction():
            self.conn.execute(
                "UPDATE child_slices SET status = 'SUBMITTED', broker_order_id = ? "
                "WHERE child_order_id = ?",
                (update.broker_order_id, cid),
            )
            self.oms.audit.append(
                "CHILD_SUBMITTED",
                self.oms.actor,
                now,
                {
                    "client_order_id": parent.client_order_id,
                    "child_order_id": cid,
                    "slice": child.slice_no,
                    "quantity": child.quantity,
                    "release_at": child.release_at.isoformat(),
                    "adopted": known is not None,
                },
            )
            self.oms.apply(update, now)
            if known is not None:
                self.catch_up_child(cid, known, now)

    def _close_window(self, parent_id: str, now: datetime) -> None:
        """End of the window: nothing more goes out; what is open is cancelled."""
        state, broker = self.oms.state, self.oms.broker
        for child in self.store.slices_of(parent_id):
            if child.status != SENDING:
                continue
            known = broker.get_order(child.child_order_id)
            with state.transaction():
                if known is None:
                    self._set_child(child.child_order_id, UNSENT)
                else:
                    self._set_child(child.child_order_id, "SUBMITTED", known.broker_order_id)
                    self.catch_up_child(child.child_order_id, known, now)
        with state.transaction():
            self.conn.execute(
                "UPDATE child_slices SET status = ? WHERE parent_id = ? AND status = ?",
                (UNSENT, parent_id, PLANNED),
            )
            self._set_phase(parent_id, "CLOSING")
            children = self.store.slices_of(parent_id)
            open_children = [c for c in children if c.status in OPEN_CHILD]
            parent = self.store.order(parent_id)
            assert parent is not None
            self.oms.audit.append(
                "ALGO_WINDOW_CLOSED",
                self.oms.actor,
                now,
                {
                    "client_order_id": parent_id,
                    "filled": parent.filled_quantity,
                    "unfilled": parent.quantity - parent.filled_quantity,
                    "unsent": sum(c.quantity for c in children if c.status == UNSENT),
                    "canceling": [c.child_order_id for c in open_children],
                },
            )
        for child in open_children:
            broker.cancel(child.child_order_id)
        with state.transaction():
            self.finish_if_closed(parent_id, now)

    def _poll_closing(self, parent_id: str, now: datetime) -> None:
        """A closing parent whose cancels are not confirmed yet: ask the venue directly."""
        state, broker = self.oms.state, self.oms.broker
        for child in self.store.slices_of(parent_id):
            if child.status not in OPEN_CHILD:
                continue
            known = broker.get_order(child.child_order_id)
            if known is None:
                continue
            if not is_terminal(known.status):  # the cancel is not through yet: ask again
                broker.cancel(child.child_order_id)
            with state.transaction():
                self.catch_up_child(child.child_order_id, known, now)
        with state.transaction():
            self.finish_if_closed(parent_id, now)

    def finish_if_closed(self, parent_id: str, at: datetime) -> None:
        """A closing parent whose children are all done ends FILLED or EXPIRED (+ TCA)."""
        if self.phase(parent_id) != "CLOSING":
            return
        if any(
            c.status in (*OPEN_CHILD, PLANNED, SENDING) for c in self.store.slices_of(parent_id)
        ):
            return
        self._set_phase(parent_id, "DONE")
        parent = self.store.order(parent_id)
        assert parent is not None
        rest = parent.quantity - parent.filled_quantity
        if rest > 0 and not is_terminal(parent.status):
            self.oms.move(
                parent,
                OrderUpdate(
                    parent_id,
                    OrderStatus.EXPIRED,
                    reason=f"{rest} of {parent.quantity} unfilled at the end of the window",
                    remaining_quantity=rest,
                ),
                at,
            )
        self.oms.tca_if_done(parent_id, at, None)

    # ----- what the venue says about a child ---------------------------------------------
    def apply_child(self, child: ChildSliceState, update: OrderUpdate, at: datetime) -> None:
        """A venue update about one child, booked against its parent (repeats are no-ops)."""
        cid = child.child_order_id
        parent = self.store.order(child.parent_id)
        assert parent is not None
        if update.broker_order_id and not child.broker_order_id:
            self.conn.execute(
                "UPDATE child_slices SET broker_order_id = ? WHERE child_order_id = ?",
                (update.broker_order_id, cid),
            )
        current = child.status if child.status in OrderStatus.__members__ else "NEW"
        if update.fill is not None:
            self._book_child_fill(parent, child, update, at)
        if update.status.value != current and is_legal(OrderStatus(current), update.status):
            self._set_child(cid, update.status.value)
            if update.status is OrderStatus.REJECTED:
                self.oms.audit.append(
                    "CHILD_REJECTED",
                    self.oms.actor,
                    at,
                    {
                        "client_order_id": parent.client_order_id,
                        "child_order_id": cid,
                        "quantity": child.quantity,
                        "reason": update.reason,
                    },
                )
        parent = self.store.order(parent.client_order_id)
        assert parent is not None
        if parent.status is OrderStatus.SUBMITTED and update.status is OrderStatus.ACCEPTED:
            self.oms.state.set_order_status(parent.client_order_id, OrderStatus.ACCEPTED)
        if parent.status is OrderStatus.FILLED:
            self._set_phase(parent.client_order_id, "DONE")
        else:
            self.finish_if_closed(parent.client_order_id, at)

    def _book_child_fill(
        self, parent: Order, child: ChildSliceState, update: OrderUpdate, at: datetime
    ) -> None:
        """Book the part of a child's execution not booked yet (by cumulative quantity)."""
        assert update.fill is not None
        fresh = update.fill.quantity
        if update.cumulative_filled is not None:
            fresh = min(fresh, update.cumulative_filled - child.filled_quantity)
        if fresh <= 0:
            return
        fill = replace(update.fill, quantity=fresh, client_order_id=parent.client_order_id)
        if self.oms.book_fill(parent, fill, at, child_id=child.child_order_id):
            self.conn.execute(
                "UPDATE child_slices SET filled_quantity = filled_quantity + ?, "
                "filled_notional = ? WHERE child_order_id = ?",
                (
                    fresh,
                    str(Decimal(child.filled_notional) + fresh * fill.price),
                    child.child_order_id,
                ),
            )

    def catch_up_child(self, cid: str, known: BrokerOrder, at: datetime) -> None:
        """Book what the venue filled of a child that we have not booked (REST look-up)."""
        child = self.store.slice(cid)
        if child is None:
            return
        missing = known.filled_quantity - child.filled_quantity
        if missing > 0 and known.avg_fill_price is not None:
            parent = self.store.order(child.parent_id)
            assert parent is not None
            notional = known.avg_fill_price * known.filled_quantity
            price = ((notional - Decimal(child.filled_notional)) / missing).quantize(
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
                if known.filled_quantity >= child.quantity
                else OrderStatus.PARTIALLY_FILLED
            )
            self.oms.apply(
                OrderUpdate(cid, status, fill=fill, cumulative_filled=known.filled_quantity), at
            )
        elif known.status is not OrderStatus.SUBMITTED:
            # Nothing left to book (a fill the stream already brought, or none): the
            # venue's state still moves the child (e.g. to FILLED or CANCELED).
            self.oms.apply(OrderUpdate(cid, known.status), at)

    def _set_child(self, cid: str, status: str, broker_order_id: str | None = None) -> None:
        self.conn.execute(
            "UPDATE child_slices SET status = ?, broker_order_id = coalesce(?, broker_order_id) "
            "WHERE child_order_id = ?",
            (status, broker_order_id, cid),
        )


class AlgoClock:
    """Drives `OrderManager.work` on a clock: the wall clock live, a fake one in tests.

    Each tick applies what the venue reported (`process_updates`, in its own
    transaction), then releases due children; it then sleeps until the next release, at
    most `idle` seconds. `clock` and `sleep` are injected, so a test moves time itself and
    never waits on the machine. `lock` (optional) is held while the OMS works, so a
    caller that steps the engine in another thread can share the OMS.
    """

    def __init__(
        self,
        oms: SlicingOms,
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
