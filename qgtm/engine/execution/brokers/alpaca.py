"""Alpaca broker on alpaca-py: REST v2 for orders, positions and account; the
trade_updates websocket stream for fills.

Paper endpoint by default; `url` / `stream_url` override the base URLs (a proxy, or
the loopback fake in tests). Keys are passed in by the caller (see `keys.py`: keyring or
env), never read from the config file and never logged.

Retries (see `retry_policy.py`): alpaca-py itself may repeat only a 429, set through
RESTClient's public constructor arguments. Idempotent reads retry on 429, 5xx and
connection errors with exponential backoff. Placing an order is not idempotent, so it is
never re-sent blindly: a 429 means Alpaca refused it unprocessed (safe to resend after
backing off); after a 5xx (a 504 gateway timeout included) or a lost connection the
order may exist, so we look it up by client_order_id first and only resend if Alpaca
has never seen it. A 422 "client_order_id must be unique" likewise means it is there.

VWAP/TWAP parents are not sent as one order: `works_algos` is False, so the OMS slices
them into child market orders on its clock. `market_data` (Alpaca's data API through
alpaca-py's StockHistoricalDataClient) gives the OMS its TCA benchmarks; it is on for
the default endpoints, and for an overridden `url` only with an explicit `data_url`
(or QGTM_ALPACA_DATA_BASE_URL), so a proxy or test venue never reaches the real one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import GetOrdersRequest, MarketOrderRequest
from alpaca.trading.stream import TradingStream

from qgtm.core.enums import OrderStatus, Side
from qgtm.core.types import Fill, Order
from qgtm.engine.execution.brokers.base import (
    Account,
    BrokerError,
    BrokerOrder,
    OrderUpdate,
)
from qgtm.engine.execution.brokers.retry_policy import is_transient, trading_client
from qgtm.engine.execution.market_data import AlpacaMarketData, MarketData

log = logging.getLogger(__name__)

T = TypeVar("T")

_STATUS = {
    "new": OrderStatus.ACCEPTED,
    "accepted": OrderStatus.ACCEPTED,
    "pending_new": OrderStatus.SUBMITTED,
    "accepted_for_bidding": OrderStatus.ACCEPTED,
    "held": OrderStatus.ACCEPTED,
    "calculated": OrderStatus.ACCEPTED,
    "done_for_day": OrderStatus.ACCEPTED,
    "pending_cancel": OrderStatus.ACCEPTED,
    "pending_replace": OrderStatus.ACCEPTED,
    "replaced": OrderStatus.ACCEPTED,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
    "stopped": OrderStatus.ACCEPTED,
    "suspended": OrderStatus.ACCEPTED,
}
_EVENTS = {
    "new": OrderStatus.ACCEPTED,
    "accepted": OrderStatus.ACCEPTED,
    "partial_fill": OrderStatus.PARTIALLY_FILLED,
    "fill": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


def _value(enum_or_str: Any) -> str:
    return str(getattr(enum_or_str, "value", enum_or_str))


class AlpacaBroker:
    """The Broker protocol over Alpaca (see module docstring for the retry rules)."""

    name = "alpaca"
    commit_before_send = True
    works_algos = False  # the OMS slices VWAP/TWAP parents on the wall clock

    def __init__(
        self,
        key_id: str,
        secret_key: str,
        *,
        paper: bool = True,
        url: str | None = None,
        stream_url: str | None = None,
        max_attempts: int = 5,
        backoff_seconds: float = 0.5,
        stream: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        data_url: str | None = None,
        market_data: MarketData | None = None,
    ) -> None:
        self.client = trading_client(
            key_id, secret_key, paper=paper, url=url, wait_seconds=backoff_seconds
        )
        data_url = data_url or os.environ.get("QGTM_ALPACA_DATA_BASE_URL") or None
        if market_data is None and (data_url or not url):
            market_data = AlpacaMarketData(
                key_id, secret_key, url=data_url, backoff_seconds=backoff_seconds, sleep=sleep
            )
        self.market_data = market_data
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep
        self._updates: queue.Queue[OrderUpdate] = queue.Queue()
        # trade_updates frames received so far (a test venue compares it with what it sent,
        # so a fake clock can step only once the stream has caught up).
        self.events_received = 0
        self._stream: TradingStream | None = None
        self._thread: threading.Thread | None = None
        if stream:
            self._stream = TradingStream(
                key_id, secret_key, paper=paper, url_override=stream_url or None
            )
            self._stream.subscribe_trade_updates(self._on_trade_update)
            self._thread = threading.Thread(
                target=self._stream.run, name="alpaca-trade-updates", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        """Stop the trade-updates stream."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        loop = stream._loop
        if loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(stream.stop_ws(), loop).result(timeout=10)
            # Closing the socket wakes the reader now instead of after its 5 s poll.
            asyncio.run_coroutine_threadsafe(stream.close(), loop).result(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=10)

    # ----- the Broker protocol -----------------------------------------------------
    def submit(self, order: Order) -> OrderUpdate:
        """Place a day market order; never sends an order Alpaca may already hold."""
        cid = order.client_order_id
        request = MarketOrderRequest(
            symbol=order.symbol,
            qty=order.quantity,
            side=OrderSide.BUY if order.side is Side.BUY else OrderSide.SELL,
            time_in_force=TimeInForce.DAY,
            client_order_id=cid,
        )
        for attempt in range(self.max_attempts):
            try:
                placed = self.client.submit_order(request)
                return self._update_from(placed)
            except (APIError, requests.RequestException) as exc:
                status = exc.status_code if isinstance(exc, APIError) else None
                if status == 429:
                    log.warning("event=alpaca_rate_limited client_order_id=%s", cid)
                elif is_transient(exc):
                    # Ambiguous: the order may have reached Alpaca. Look before resending.
                    log.warning("event=alpaca_submit_ambiguous client_order_id=%s", cid)
                    known = self.get_order(cid)
                    if known is not None:
                        return _update_from_broker_order(known)
                elif status == 422 and "unique" in _message(exc):
                    known = self.get_order(cid)
                    if known is not None:
                        return _update_from_broker_order(known)
                    raise BrokerError(f"alpaca: {cid} reported duplicate but not found") from exc
                else:
                    return OrderUpdate(cid, OrderStatus.REJECTED, reason=_message(exc))
            self._backoff(attempt)
        raise BrokerError(f"alpaca: could not place {cid} after {self.max_attempts} attempts")

    def cancel(self, client_order_id: str) -> None:
        """Request a cancel; the CANCELED update arrives on the stream."""
        known = self.get_order(client_order_id)
        if known is None:
            return
        try:
            self._retrying(lambda: self.client.cancel_order_by_id(known.broker_order_id))
        except APIError as exc:
            if exc.status_code != 422:  # 422: no longer cancelable (already done)
                raise BrokerError(f"alpaca: cancel {client_order_id}: {_message(exc)}") from exc

    def get_order(self, client_order_id: str) -> BrokerOrder | None:
        """Alpaca's view of the order with this client id, None if it has none."""
        try:
            order = self._retrying(lambda: self.client.get_order_by_client_id(client_order_id))
        except APIError as exc:
            if exc.status_code == 404:
                return None
            raise BrokerError(f"alpaca: order {client_order_id}: {_message(exc)}") from exc
        return _broker_order(order)

    def open_orders(self) -> list[Order]:
        """Alpaca's open orders as our Order values."""
        orders = self._retrying(
            lambda: self.client.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))
        )
        result = []
        for o in orders:
            result.append(
                Order(
                    client_order_id=o.client_order_id,
                    symbol=o.symbol or "",
                    side=Side.BUY if _value(o.side) == "buy" else Side.SELL,
                    quantity=int(Decimal(str(o.qty))),
                    created_at=o.submitted_at,
                    decision_date=o.submitted_at.date(),
                    status=_STATUS.get(_value(o.status), OrderStatus.ACCEPTED),
                    order_type=_value(o.order_type or o.type),
                    filled_quantity=int(Decimal(str(o.filled_qty or 0))),
                )
            )
        return result

    def positions(self) -> dict[str, int]:
        """Signed shares per symbol (Alpaca reports shorts with a negative qty)."""
        held = self._retrying(self.client.get_all_positions)
        out = {p.symbol: int(Decimal(p.qty)) for p in held}
        return {s: q for s, q in out.items() if q}

    def account(self) -> Account:
        """Cash, buying power and equity of the Alpaca account."""
        acct = self._retrying(self.client.get_account)
        return Account(
            cash=Decimal(acct.cash or 0),
            buying_power=Decimal(acct.buying_power or 0),
            equity=Decimal(acct.equity or 0),
        )

    def drain_updates(self) -> list[OrderUpdate]:
        """Trade updates received on the stream since the last call."""
        out = []
        while True:
            try:
                out.append(self._updates.get_nowait())
            except queue.Empty:
                return out

    def wait_for_updates(self, count: int, timeout: float = 10.0) -> None:
        """Block until at least `count` updates are queued (for callers that must wait)."""
        deadline = time.monotonic() + timeout
        while self._updates.qsize() < count and time.monotonic() < deadline:
            time.sleep(0.01)

    # ----- internals ---------------------------------------------------------------
    async def _on_trade_update(self, data: TradeUpdate) -> None:
        update = _update_from_event(data)
        if update is not None:
            self._updates.put(update)
        self.events_received += 1  # after the put: a counted event is already drainable

    def _retrying(self, call: Callable[[], T]) -> T:
        """Run an idempotent request, retrying transient failures with backoff."""
        for attempt in range(self.max_attempts):
            try:
                return call()
            except (APIError, requests.RequestException) as exc:
                if not is_transient(exc) or attempt == self.max_attempts - 1:
                    raise
                log.warning(
                    "event=alpaca_retry attempt=%d error=%s", attempt + 1, type(exc).__name__
                )
            self._backoff(attempt)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> None:
        self._sleep(min(self.backoff_seconds * 2**attempt, 30.0))

    def _update_from(self, placed: AlpacaOrder) -> OrderUpdate:
        return _update_from_broker_order(_broker_order(placed))


def _message(exc: Exception) -> str:
    if isinstance(exc, APIError):
        try:
            return str(exc.message)
        except (ValueError, KeyError, TypeError):
            return str(exc)
    return str(exc)


def _broker_order(o: AlpacaOrder) -> BrokerOrder:
    avg = o.filled_avg_price
    return BrokerOrder(
        client_order_id=o.client_order_id,
        broker_order_id=str(o.id),
        symbol=o.symbol or "",
        status=_STATUS.get(_value(o.status), OrderStatus.ACCEPTED),
        quantity=int(Decimal(str(o.qty or 0))),
        filled_quantity=int(Decimal(str(o.filled_qty or 0))),
        avg_fill_price=None if avg in (None, "") else Decimal(str(avg)),
    )


def _update_from_broker_order(known: BrokerOrder) -> OrderUpdate:
    # Fills are booked from trade_update executions only, so a status derived from a REST
    # snapshot never claims fills; the executions bring the order to FILLED.
    status = known.status
    if status in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED):
        status = OrderStatus.ACCEPTED
    return OrderUpdate(known.client_order_id, status, broker_order_id=known.broker_order_id)


def _update_from_event(data: TradeUpdate) -> OrderUpdate | None:
    event = _value(data.event)
    status = _EVENTS.get(event)
    if status is None:
        return None
    order = data.order
    cid = order.client_order_id
    fill = None
    if event in ("fill", "partial_fill") and data.qty and data.price is not None:
        fill = Fill(
            fill_id=str(data.execution_id),
            client_order_id=cid,
            symbol=order.symbol or "",
            side=Side.BUY if _value(order.side) == "buy" else Side.SELL,
            quantity=int(Decimal(str(data.qty))),
            price=Decimal(str(data.price)),
            commission=Decimal(0),  # Alpaca charges no commission on US equities
            filled_at=data.timestamp,
        )
    return OrderUpdate(
        cid,
        status,
        fill=fill,
        broker_order_id=str(order.id),
        cumulative_filled=int(Decimal(str(order.filled_qty or 0))),
    )
