"""OrderManager: the OMS between the risk manager and a Broker.

It owns an order's life after the decision: persist the parent order (committed before a
venue outside this process sees it), send it once, apply what the venue reports through
the legal state machine, book every fill exactly once, record child slices, and when the
parent is done compute its TCA (stored in the `tca` table and logged as TCA_RESULT).

Idempotency: the client order id is deterministic (see `oms.client_order_id`), the order
row is keyed by it, fills are keyed by the venue's execution id, and after a crash an
order that may have been sent is looked up at the venue by its client id before it is
ever sent again.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from qgtm.core.enums import OrderStatus, Side
from qgtm.core.types import Fill, Order
from qgtm.engine.audit import AuditLog
from qgtm.engine.execution import tca
from qgtm.engine.execution.algos import Algo
from qgtm.engine.execution.brokers.base import Broker, BrokerError, BrokerOrder, OrderUpdate
from qgtm.engine.execution.brokers.paper import SessionBar, session_vwap
from qgtm.engine.execution.lifecycle import is_legal, is_terminal
from qgtm.engine.state import StateStore

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS execution_orders (
    client_order_id TEXT PRIMARY KEY REFERENCES orders(client_order_id),
    strategy TEXT NOT NULL,
    algo TEXT NOT NULL,
    decision_price TEXT NOT NULL,
    broker_order_id TEXT,
    remaining_quantity INTEGER NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS child_orders (
    child_order_id TEXT PRIMARY KEY,
    parent_id TEXT NOT NULL REFERENCES orders(client_order_id),
    quantity INTEGER NOT NULL,
    price TEXT NOT NULL,
    filled_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS child_orders_by_parent ON child_orders(parent_id);
CREATE TABLE IF NOT EXISTS tca (
    client_order_id TEXT PRIMARY KEY REFERENCES orders(client_order_id),
    strategy TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    algo TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    filled_quantity INTEGER NOT NULL,
    avg_fill_price REAL,
    decision_price REAL NOT NULL,
    arrival_price REAL NOT NULL,
    vwap_price REAL NOT NULL,
    end_price REAL NOT NULL,
    commission REAL NOT NULL,
    arrival_cost_bps REAL,
    vwap_slippage_bps REAL,
    implementation_shortfall_bps REAL NOT NULL,
    computed_at TEXT NOT NULL
);
"""

_ORDER_COLUMNS = (
    "client_order_id, symbol, side, quantity, created_at, decision_date, status, "
    "order_type, reason, filled_quantity"
)


@dataclass(frozen=True, slots=True)
class Benchmarks:
    """Prices TCA compares fills against: arrival, market VWAP, end of window."""

    arrival: Decimal
    vwap: Decimal
    end: Decimal

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
    ) -> None:
        self.state = state
        self.conn: sqlite3.Connection = state.conn
        self.conn.executescript(SCHEMA)
        self.audit = audit
        self.broker = broker
        self.on_fill = on_fill
        self.actor = actor

    # ----- orders out --------------------------------------------------------------
    def place(
        self,
        order: Order,
        *,
        strategy: str,
        algo: Algo,
        decision_price: Decimal,
        at: datetime,
    ) -> bool:
        """Record a new parent order; send it now if the venue lives in this process.

        Returns False (nothing written, nothing sent) if this decision already made it.
        Runs inside the caller's transaction; for an external venue call `dispatch()`
        after that transaction commits.
        """
        order = replace(order, status=OrderStatus.NEW, order_type=algo.value.lower())
        if not self.state.insert_order(order):
            return False
        self.conn.execute(
            "INSERT INTO execution_orders (client_order_id, strategy, algo, decision_price) "
            "VALUES (?, ?, ?, ?)",
            (order.client_order_id, strategy, algo.value, str(decision_price)),
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
                    self._send(order, at)
            except BrokerError as exc:
                log.warning(
                    "event=dispatch_deferred client_order_id=%s error=%r",
                    order.client_order_id,
                    str(exc),
                )
                continue
            sent += 1
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
        if update.broker_order_id:
            self.conn.execute(
                "UPDATE execution_orders SET broker_order_id = ? WHERE client_order_id = ?",
                (update.broker_order_id, cid),
            )
        self.audit.append(
            "ORDER_SUBMITTED",
            self.actor,
            at,
            {
                "client_order_id": cid,
                "symbol": order.symbol,
                "side": order.side.value,
                "quantity": order.quantity,
                "algo": order.order_type.upper(),
                "reason": order.reason,
            },
        )
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
        ]
        for order in working:
            known = self.broker.get_order(order.client_order_id)
            if known is not None:
                self._catch_up(known, at)
        return len(working)

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
        """Ask the venue to cancel; the order becomes CANCELED when the venue says so."""
        self.broker.cancel(client_order_id)

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
            log.warning("event=update_for_unknown_order client_order_id=%s", update.client_order_id)
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
        current = self._order_row(update.client_order_id)
        assert current is not None
        if is_terminal(current.status) and not self._has_tca(current.client_order_id):
            bench = (benchmarks or {}).get(current.symbol)
            self._record_tca(current, bench, at)

    def _book_fill(self, order: Order, fill: Fill, at: datetime) -> None:
        if not self.state.record_fill(fill):
            return  # this execution was already booked
        if is_terminal(order.status) and order.status is not OrderStatus.FILLED:
            # A late execution after a cancel/expiry: book the money, keep the final state.
            log.warning("event=fill_on_closed_order client_order_id=%s", order.client_order_id)
            self.state.set_order_status(order.client_order_id, order.status)
        self.on_fill(fill)
        child = fill.fill_id.removesuffix("-F1")
        if child != order.client_order_id:
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
            },
        )

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
        if bench is None:
            last = fills[-1].price if fills else decision
            bench = Benchmarks(arrival=decision, vwap=decision, end=last)
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
            "INSERT INTO tca VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        """Child slices of one parent order."""
        rows = self.conn.execute(
            "SELECT child_order_id, quantity, price, filled_at FROM child_orders "
            "WHERE parent_id = ? ORDER BY filled_at",
            (parent_id,),
        ).fetchall()
        return [
            {"child_order_id": r[0], "quantity": r[1], "price": float(r[2]), "filled_at": r[3]}
            for r in rows
        ]

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
