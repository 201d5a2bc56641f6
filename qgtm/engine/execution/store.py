"""The OMS's rows in state.sqlite, read and written, with typed read models.

The tables themselves are created by `engine.state_schema`; this module holds the
queries: parent orders and their fills, the execution metadata beside each parent, the
wall-clock slicer's child slices, the children a venue filled, and the TCA results.
Reads return typed rows: the blotter, child and TCA rows are the engine protocol's own
structs (`core.results`: one type from the table to the terminal), a child slice's
stored state is the slicer's `ChildSliceState`. The OMS's public read methods still
return them as plain dicts (`as_dicts`), the shape its callers and tests were written
against.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from qgtm.core.enums import OrderStatus, Side
from qgtm.core.results import BlotterRow, ChildOrderRow, TcaRow, TcaStrategyRow
from qgtm.core.types import Fill, Order
from qgtm.engine.execution.tca import TcaResult
from qgtm.engine.state import ORDER_COLUMNS, order_from_row

_SLICE_COLUMNS = (
    "child_order_id, parent_id, slice_no, release_at, quantity, status, broker_order_id, "
    "filled_quantity, filled_notional, sent_at"
)
_TCA_COLUMNS = (
    "client_order_id, strategy, symbol, side, algo, quantity, filled_quantity, "
    "avg_fill_price, decision_price, arrival_price, vwap_price, end_price, commission, "
    "arrival_cost_bps, vwap_slippage_bps, implementation_shortfall_bps, computed_at, "
    "arrival_source, vwap_source"
)


@dataclass(frozen=True, slots=True)
class ChildSliceState:
    """A planned child slice (`algos.ChildSlice`) as stored: its state and fills so far."""

    child_order_id: str
    parent_id: str
    slice_no: int
    release_at: datetime
    quantity: int
    status: str
    broker_order_id: str | None
    filled_quantity: int
    filled_notional: str
    sent_at: str | None

    def as_dict(self) -> dict[str, Any]:
        """The blotter's shape: every field, the release time as ISO text."""
        return {**asdict(self), "release_at": self.release_at.isoformat()}


@dataclass(frozen=True, slots=True)
class ExecutionMeta:
    """What the OMS stored beside a parent order when it placed it."""

    strategy: str
    algo: str
    decision_price: Decimal


def as_dicts(rows: list[Any]) -> list[dict[str, Any]]:
    """Read models as the plain dicts the OMS's methods return."""
    return [msgspec.structs.asdict(r) for r in rows]


class ExecutionStore:
    """Queries over the OMS's tables; every write runs in the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # ----- parent orders ---------------------------------------------------------------
    def order(self, cid: str) -> Order | None:
        """One order by client id, or None."""
        row = self.conn.execute(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE client_order_id = ?", (cid,)
        ).fetchone()
        return None if row is None else order_from_row(row)

    def orders_in(self, status: OrderStatus) -> list[Order]:
        """Orders in `status`, oldest first."""
        rows = self.conn.execute(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE status = ? "
            "ORDER BY created_at, client_order_id",
            (status.value,),
        ).fetchall()
        return [order_from_row(r) for r in rows]

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

    def add_execution(self, cid: str, strategy: str, algo: str, decision_price: Decimal) -> None:
        """The strategy, algo and decision price of a newly placed parent."""
        self.conn.execute(
            "INSERT INTO execution_orders (client_order_id, strategy, algo, decision_price) "
            "VALUES (?, ?, ?, ?)",
            (cid, strategy, algo, str(decision_price)),
        )

    def execution(self, cid: str) -> ExecutionMeta | None:
        """What was stored when the parent was placed (None: placed before the OMS)."""
        row = self.conn.execute(
            "SELECT strategy, algo, decision_price FROM execution_orders WHERE client_order_id = ?",
            (cid,),
        ).fetchone()
        return None if row is None else ExecutionMeta(row[0], row[1], Decimal(row[2]))

    def set_broker_order_id(self, cid: str, broker_order_id: str) -> None:
        """The venue's own id of a parent sent as one order."""
        self.conn.execute(
            "UPDATE execution_orders SET broker_order_id = ? WHERE client_order_id = ?",
            (broker_order_id, cid),
        )

    def set_outcome(self, cid: str, remaining_quantity: int, note: str) -> None:
        """The unfilled rest and the venue's reason when a parent stops short."""
        self.conn.execute(
            "UPDATE execution_orders SET remaining_quantity = ?, note = ? "
            "WHERE client_order_id = ?",
            (remaining_quantity, note, cid),
        )

    # ----- children a venue filled -----------------------------------------------------
    def add_child_fill(
        self, child_id: str, parent_id: str, quantity: int, price: Decimal, at: datetime
    ) -> None:
        """Roll one execution into its child's row: cumulative quantity, average price."""
        self.conn.execute(
            "INSERT INTO child_orders (child_order_id, parent_id, quantity, price, filled_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(child_order_id) DO UPDATE SET "
            "price = CAST((CAST(price AS REAL) * quantity + ? * ?) / (quantity + ?) AS TEXT), "
            "quantity = quantity + excluded.quantity, filled_at = excluded.filled_at",
            (
                child_id,
                parent_id,
                quantity,
                str(price),
                at.isoformat(),
                float(price),
                quantity,
                quantity,
            ),
        )

    def note_venue_child(
        self, child_id: str, parent_id: str, quantity: int, price: Decimal, at: datetime
    ) -> None:
        """A child the venue made of a parent it works itself (first execution wins)."""
        self.conn.execute(
            "INSERT OR IGNORE INTO child_orders (child_order_id, parent_id, quantity, price, "
            "filled_at) VALUES (?, ?, ?, ?, ?)",
            (child_id, parent_id, quantity, str(price), at.isoformat()),
        )

    # ----- the slicer's children -------------------------------------------------------
    def slice(self, cid: str) -> ChildSliceState | None:
        """One planned child by its client id, or None."""
        rows = self._slices("WHERE child_order_id = ?", (cid,))
        return rows[0] if rows else None

    def slices_of(self, parent_id: str) -> list[ChildSliceState]:
        """A sliced parent's children in schedule order."""
        return self._slices("WHERE parent_id = ? ORDER BY slice_no", (parent_id,))

    def slices_in(self, statuses: tuple[str, ...]) -> list[ChildSliceState]:
        """Children in any of `statuses`, by parent and schedule."""
        marks = ", ".join("?" for _ in statuses)
        return self._slices(
            f"WHERE status IN ({marks}) ORDER BY parent_id, slice_no", tuple(statuses)
        )

    def _slices(self, where: str, args: tuple) -> list[ChildSliceState]:
        rows = self.conn.execute(
            f"SELECT {_SLICE_COLUMNS} FROM child_slices {where}", args
        ).fetchall()
        return [
            ChildSliceState(r[0], r[1], r[2], datetime.fromisoformat(r[3]), *r[4:]) for r in rows
        ]

    # ----- TCA -------------------------------------------------------------------------
    def has_tca(self, cid: str) -> bool:
        """True once the parent's TCA is stored."""
        row = self.conn.execute("SELECT 1 FROM tca WHERE client_order_id = ?", (cid,)).fetchone()
        return row is not None

    def add_tca(
        self, result: TcaResult, at: datetime, arrival_source: str, vwap_source: str
    ) -> None:
        """Store one parent's TCA (once: the parent is finished)."""
        self.conn.execute(
            f"INSERT INTO tca ({_TCA_COLUMNS}) "
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
                arrival_source,
                vwap_source,
            ),
        )

    # ----- read models -----------------------------------------------------------------
    def blotter(self, limit: int = 200) -> list[BlotterRow]:
        """Newest parent orders with state, algo, fills, child count and unfilled rest."""
        rows = self.conn.execute(
            "SELECT o.client_order_id, o.decision_date, o.symbol, o.side, o.quantity, o.status, "
            "o.filled_quantity, o.avg_fill_price, coalesce(e.algo, upper(o.order_type)), "
            "coalesce(e.strategy, ''), coalesce(e.remaining_quantity, 0), coalesce(e.note, ''), "
            "(SELECT count(*) FROM child_orders c WHERE c.parent_id = o.client_order_id) "
            "FROM orders o LEFT JOIN execution_orders e USING (client_order_id) "
            "ORDER BY o.created_at DESC, o.client_order_id LIMIT ?",
            (limit,),
        ).fetchall()
        return [BlotterRow(*r[:7], None if r[7] is None else float(r[7]), *r[8:]) for r in rows]

    def children(self, parent_id: str) -> list[ChildOrderRow]:
        """Children of one parent: every planned child with its state if the OMS sliced
        it, else the children the venue filled, with quantity, price and last fill time."""
        rows = self.conn.execute(
            "SELECT child_order_id, quantity, price, filled_at FROM child_orders "
            "WHERE parent_id = ? ORDER BY filled_at",
            (parent_id,),
        ).fetchall()
        filled = {
            r[0]: ChildOrderRow(r[0], r[1], r[1], float(r[2]), r[3], "FILLED", None) for r in rows
        }
        planned = self.slices_of(parent_id)
        if not planned:
            return list(filled.values())
        out = []
        for c in planned:
            fill = filled.get(c.child_order_id)
            out.append(
                ChildOrderRow(
                    c.child_order_id,
                    c.quantity,
                    0 if fill is None else fill.filled,
                    None if fill is None else fill.price,
                    None if fill is None else fill.filled_at,
                    c.status,
                    c.release_at.isoformat(),
                )
            )
        return out

    def tca_rows(self, limit: int = 200) -> list[TcaRow]:
        """Newest TCA results, one per finished parent order."""
        rows = self.conn.execute(
            f"SELECT {_TCA_COLUMNS} FROM tca ORDER BY computed_at DESC, client_order_id LIMIT ?",
            (limit,),
        ).fetchall()
        return [TcaRow(*r) for r in rows]

    def tca_by_strategy(self) -> list[TcaStrategyRow]:
        """Per strategy: orders, and notional-weighted mean costs in bps.

        Arrival cost and VWAP slippage are weighted by filled notional (F x P_d), the
        shortfall by intended notional (Q x P_d), matching the denominators in `tca`.
        """
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
                TcaStrategyRow(
                    strategy,
                    n,
                    arr / filled_notional if filled_notional else None,
                    vw / filled_notional if filled_notional else None,
                    shortfall / notional if notional else None,
                )
            )
        return out
