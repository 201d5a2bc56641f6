"""`state.sqlite`: orders, fills, positions, equity, signals, risk events, audit.

Its schema lives in `state_schema` (numbered migrations, applied when the store opens).

Every engine step writes inside one IMMEDIATE transaction, committed before the step
is acknowledged, so a crash leaves either all of a session or none of it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from qgtm.core.enums import KillTier, OrderStatus, Side
from qgtm.core.snapshot import OrderRow
from qgtm.core.types import Fill, Order, Signal
from qgtm.engine.portfolio.book import Book, Holding
from qgtm.engine.state_schema import migrate

STATE_DB = "state.sqlite"

# Engine values kept in typed columns of `book_state` (see state_schema, migration 2);
# `get_meta` / `set_meta` still answer for them so callers written against `meta` keep
# working, but new code reads `book_state()` and writes with the typed setters.
_BOOK_STATE_KEYS = ("kill_tier", "cash", "peak_equity")


@dataclass(frozen=True, slots=True)
class BookState:
    """The book's stored kill tier, cash and peak equity (None: not stored yet)."""

    kill_tier: KillTier
    cash: Decimal | None
    peak_equity: Decimal | None


class StateStore:
    """Owns the SQLite connection; methods run inside the caller's `transaction()`."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / STATE_DB
        # The engine steps in a worker thread; one step at a time is guaranteed by the engine.
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        migrate(self.conn)

    def close(self) -> None:
        """Close the database file."""
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def get_meta(self, key: str) -> str | None:
        """A stored engine value, or None."""
        if key in _BOOK_STATE_KEYS:
            row = self.conn.execute(f"SELECT {key} FROM book_state WHERE id = 1").fetchone()
        else:
            row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: object) -> None:
        """Store an engine value as text (tier, cash and peak equity in their columns)."""
        if key in _BOOK_STATE_KEYS:
            self.conn.execute(f"UPDATE book_state SET {key} = ? WHERE id = 1", (str(value),))
            return
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    def book_state(self) -> BookState:
        """Kill tier, cash and peak equity as last committed."""
        tier, cash, peak = self.conn.execute(
            "SELECT kill_tier, cash, peak_equity FROM book_state WHERE id = 1"
        ).fetchone()
        return BookState(
            KillTier[tier],
            None if cash is None else Decimal(cash),
            None if peak is None else Decimal(peak),
        )

    def set_kill_tier(self, tier: KillTier) -> None:
        """Store the kill tier in force."""
        self.conn.execute("UPDATE book_state SET kill_tier = ? WHERE id = 1", (tier.name,))

    def set_cash(self, cash: Decimal) -> None:
        """Store the book's cash (exact Decimal text)."""
        self.conn.execute("UPDATE book_state SET cash = ? WHERE id = 1", (str(cash),))

    def set_peak_equity(self, peak: Decimal) -> None:
        """Store the equity peak the drawdown is measured from (exact Decimal text)."""
        self.conn.execute("UPDATE book_state SET peak_equity = ? WHERE id = 1", (str(peak),))

    def insert_order(self, order: Order) -> bool:
        """Record an order; False (and nothing written) if its id already exists."""
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO orders (client_order_id, decision_date, created_at, symbol, "
            "side, quantity, order_type, status, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                order.client_order_id,
                order.decision_date.isoformat(),
                order.created_at.isoformat(),
                order.symbol,
                order.side.value,
                order.quantity,
                order.order_type,
                order.status.value,
                order.reason,
            ),
        )
        return cursor.rowcount == 1

    def set_order_status(self, client_order_id: str, status: OrderStatus) -> None:
        """Move an order to `status` (fills use `record_fill`)."""
        self.conn.execute(
            "UPDATE orders SET status = ? WHERE client_order_id = ?",
            (status.value, client_order_id),
        )

    def record_fill(self, fill: Fill) -> bool:
        """Store a fill once and roll it into its order; False if already booked."""
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO fills (fill_id, client_order_id, symbol, side, quantity, "
            "price, commission, filled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fill.fill_id,
                fill.client_order_id,
                fill.symbol,
                fill.side.value,
                fill.quantity,
                str(fill.price),
                str(fill.commission),
                fill.filled_at.isoformat(),
            ),
        )
        if cursor.rowcount != 1:
            return False
        row = self.conn.execute(
            "SELECT filled_quantity, avg_fill_price FROM orders WHERE client_order_id = ?",
            (fill.client_order_id,),
        ).fetchone()
        self.conn.execute(
            "UPDATE orders SET filled_quantity = filled_quantity + ?, avg_fill_price = ?, "
            "filled_on = ?, status = CASE WHEN filled_quantity + ? >= quantity "
            "THEN 'FILLED' ELSE 'PARTIALLY_FILLED' END WHERE client_order_id = ?",
            (
                fill.quantity,
                str(_average_price(row, fill)),
                fill.filled_at.date().isoformat(),
                fill.quantity,
                fill.client_order_id,
            ),
        )
        return True

    def open_orders(self) -> list[Order]:
        """Orders still working at the broker, oldest first."""
        rows = self.conn.execute(
            f"SELECT {ORDER_COLUMNS} FROM orders "
            "WHERE status IN ('NEW', 'SUBMITTED', 'ACCEPTED', 'PARTIALLY_FILLED') "
            "ORDER BY created_at, client_order_id"
        ).fetchall()
        return [order_from_row(r) for r in rows]

    def recent_orders(self, limit: int = 50) -> list[OrderRow]:
        """Newest orders first, with their fill if any."""
        rows = self.conn.execute(
            "SELECT client_order_id, decision_date, symbol, side, quantity, status, "
            "avg_fill_price, filled_on FROM orders ORDER BY created_at DESC, client_order_id "
            "LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            OrderRow(
                client_order_id=r[0],
                decision_date=date.fromisoformat(r[1]),
                symbol=r[2],
                side=r[3],
                quantity=r[4],
                status=r[5],
                fill_price=None if r[6] is None else float(r[6]),
                filled_on=None if r[7] is None else date.fromisoformat(r[7]),
            )
            for r in rows
        ]

    def save_positions(self, book: Book, marks: dict[str, Decimal]) -> None:
        """Replace the positions table with the book at `marks`."""
        self.conn.execute("DELETE FROM positions")
        self.conn.executemany(
            "INSERT INTO positions (symbol, quantity, avg_price, last_price) VALUES (?, ?, ?, ?)",
            [
                (s, h.quantity, str(h.avg_price), str(marks[s]))
                for s, h in sorted(book.holdings.items())
            ],
        )

    def load_book(self, initial_cash: Decimal) -> Book:
        """Cash and holdings as last committed (a fresh book if nothing is stored)."""
        cash = self.book_state().cash
        rows = self.conn.execute("SELECT symbol, quantity, avg_price FROM positions").fetchall()
        return Book(
            cash=initial_cash if cash is None else cash,
            holdings={r[0]: Holding(r[1], Decimal(r[2])) for r in rows},
        )

    def record_equity(
        self,
        session: date,
        equity: Decimal,
        cash: Decimal,
        daily_pnl: Decimal,
        gross: Decimal,
        tier: str,
    ) -> None:
        """One row per session close."""
        self.conn.execute(
            "INSERT INTO equity (session, equity, cash, daily_pnl, gross_exposure, kill_tier) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (session.isoformat(), str(equity), str(cash), str(daily_pnl), str(gross), tier),
        )

    def equity_curve(self, limit: int = 2000) -> list[tuple[date, float]]:
        """The last `limit` session closes, oldest first."""
        rows = self.conn.execute(
            "SELECT session, equity FROM equity ORDER BY session DESC LIMIT ?", (limit,)
        ).fetchall()
        return [(date.fromisoformat(s), float(e)) for s, e in reversed(rows)]

    def session_count(self) -> int:
        """Sessions processed so far."""
        return self.conn.execute("SELECT count(*) FROM equity").fetchone()[0]

    def record_signals(self, signals: Iterable[Signal]) -> None:
        """Store signals; a repeat of (strategy, as_of, symbol) is ignored."""
        self.conn.executemany(
            "INSERT OR IGNORE INTO signals (strategy, as_of, symbol, side, weight, confidence, "
            "rationale) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    s.strategy,
                    s.as_of.isoformat(),
                    s.symbol,
                    s.side.value,
                    s.weight,
                    s.confidence,
                    s.rationale,
                )
                for s in signals
            ],
        )

    def record_risk_event(
        self, at: datetime, kind: str, tier: str, detail: str, symbol: str | None = None
    ) -> None:
        """A tier change or an order cut/blocked, with its reason."""
        self.conn.execute(
            "INSERT INTO risk_events (at, kind, tier, symbol, detail) VALUES (?, ?, ?, ?, ?)",
            (at.isoformat(), kind, tier, symbol, detail),
        )


def _average_price(row: tuple | None, fill: Fill) -> Decimal:
    """Quantity-weighted average fill price after `fill` (exact Decimal, 6 places)."""
    before_qty, before_avg = (row or (0, None))[:2]
    if not before_qty or before_avg is None:
        return fill.price
    total = Decimal(before_avg) * before_qty + fill.price * fill.quantity
    return (total / (before_qty + fill.quantity)).quantize(Decimal("0.000001"))


ORDER_COLUMNS = (
    "client_order_id, symbol, side, quantity, created_at, decision_date, status, "
    "order_type, reason, filled_quantity"
)
"""The `orders` columns `order_from_row` reads, in its order."""


def order_from_row(r: tuple) -> Order:
    """An `orders` row selected as ORDER_COLUMNS, as the core Order."""
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
