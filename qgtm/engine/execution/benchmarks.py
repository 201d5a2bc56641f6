"""TCA benchmarks: the prices an order's fills are compared against, and their source.

`tca` does the maths; this module finds its inputs. On the paper venue they come from
the execution session's daily bar (`Benchmarks.from_bar`). On a wall-clock venue the
OMS notes each parent's execution window when it goes out (`note_window`, with the
market price at that moment when the market trades) and, when the parent is done, reads
the venue's minute bars over that window (`for_order`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from qgtm.core.types import Fill, Order
from qgtm.engine.execution.algos import aware
from qgtm.engine.execution.brokers.paper import SessionBar, session_vwap
from qgtm.engine.execution.market_data import MarketData, window_vwap


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

    @classmethod
    def decision_only(cls, decision: Decimal, fills: list[Fill]) -> Benchmarks:
        """No market data: the decision price, and the last fill as the end price."""
        last = fills[-1].price if fills else decision
        return cls(decision, decision, last, "decision", "decision")


def utc_text(at: datetime) -> str:
    """ISO text of an aware time in UTC (so stored times compare as text and as values)."""
    return aware(at).astimezone(UTC).isoformat()


class VenueBenchmarks:
    """Execution windows of a wall-clock venue's orders, and their benchmarks from its
    minute bars (rows in the `order_benchmarks` table; writes in the caller's transaction)."""

    def __init__(self, conn: sqlite3.Connection, market_data: MarketData | None) -> None:
        self.conn = conn
        self.market_data = market_data

    def note_window(
        self, symbol: str, cid: str, start: datetime, end: datetime | None, at: datetime
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
                utc_text(start),
                None if end is None else utc_text(end),
            ),
        )

    def for_order(
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
        if row is None:
            return Benchmarks.decision_only(decision, fills)
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
        last_fill = fills[-1].price if fills else decision
        end_price = bars[-1].close if bars else last_fill
        return Benchmarks(
            arrival, vwap if vwap is not None else decision, end_price, a_source, v_source
        )
