"""The one Broker protocol every venue adapter implements.

An adapter (paper, Alpaca; later IB, Tradier, Tastytrade) is one module with one class
that satisfies `Broker`. It speaks in our types: orders go in keyed by their
deterministic `client_order_id`, and everything the venue reports comes back as an
`OrderUpdate` from `drain_updates()` (status changes and fills, each fill with the
venue's execution id so a repeat is booked once).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol, runtime_checkable

from qgtm.core.enums import OrderStatus
from qgtm.core.types import Fill, Order


class BrokerError(RuntimeError):
    """The venue could not be reached or answered in a way we cannot act on."""


class OrderRejectedError(BrokerError):
    """The venue refused the order (market closed, buying power, bad symbol, ...)."""


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """Something the venue reports about one of our orders.

    `fill` is set for (partial) executions; `reason` explains rejects, cancels and what
    was left unfilled when an order expired at the end of its window. A venue that
    reports the order's cumulative filled quantity sets `cumulative_filled`, which lets
    the OMS book only what it has not booked yet (a fill caught up by a REST look-up
    after a restart and the same execution arriving later on the stream count once).
    """

    client_order_id: str
    status: OrderStatus
    fill: Fill | None = None
    broker_order_id: str | None = None
    reason: str = ""
    remaining_quantity: int = 0
    cumulative_filled: int | None = None


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """The venue's view of one order, looked up by client order id."""

    client_order_id: str
    broker_order_id: str
    symbol: str
    status: OrderStatus
    quantity: int
    filled_quantity: int
    avg_fill_price: Decimal | None


@dataclass(frozen=True, slots=True)
class Account:
    """Cash and buying power as the venue reports them."""

    cash: Decimal
    buying_power: Decimal
    equity: Decimal


@runtime_checkable
class Broker(Protocol):
    """A venue that accepts, cancels and reports on orders.

    `commit_before_send` is True for venues outside this process: the OMS then commits
    an order row before calling `submit`, and after a crash looks the order up with
    `get_order` before sending it again. `works_algos` is True for a venue that works a
    VWAP/TWAP parent itself (the paper simulator); when False the OMS slices the parent
    into child market orders and releases them on its clock (`OrderManager.work`).
    """

    name: str
    commit_before_send: bool
    works_algos: bool

    def submit(self, order: Order) -> OrderUpdate:
        """Send an order; an id the venue already has is not sent twice."""
        ...

    def cancel(self, client_order_id: str) -> None:
        """Ask the venue to cancel; the CANCELED update arrives via `drain_updates`."""
        ...

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """The venue's view of an order, or None if it never received it."""
        ...

    def open_orders(self) -> list[Order]:
        """Orders sent and not yet filled, cancelled, rejected or expired."""
        ...

    def positions(self) -> dict[str, int]:
        """Signed share quantity per symbol held at the venue (no zero entries)."""
        ...

    def account(self) -> Account:
        """Cash and buying power."""
        ...

    def drain_updates(self) -> list[OrderUpdate]:
        """Status changes and fills received since the last call, oldest first."""
        ...
