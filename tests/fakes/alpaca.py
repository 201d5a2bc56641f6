"""Loopback fake of Alpaca's Trading API v2 and its trade_updates websocket stream.

It speaks the wire formats the real alpaca-py client expects, so tests point the real
`TradingClient` (url_override) and `TradingStream` (url_override) at it unchanged:

REST (JSON; key headers APCA-API-KEY-ID / APCA-API-SECRET-KEY):
  POST   /v2/orders                          place (422 duplicate client_order_id,
                                             422 unknown asset, 403 buying power)
  GET    /v2/orders?status=open|closed|all   list
  GET    /v2/orders/{id}                     one order (404 when unknown)
  GET    /v2/orders:by_client_order_id       ?client_order_id=... (404 when unknown)
  DELETE /v2/orders/{id}                     204, or 422 when no longer cancelable
  GET    /v2/positions                       open positions
  GET    /v2/account                         cash, buying power, equity
Errors are `{"code": <int>, "message": <str>}` with the HTTP status.

Stream (JSON frames, sent binary like Alpaca's):
  -> {"action": "authenticate", "data": {"key_id": ..., "secret_key": ...}}
  <- {"stream": "authorization", "data": {"status": "authorized", "action": "authenticate"}}
  -> {"action": "listen", "data": {"streams": ["trade_updates"]}}
  <- {"stream": "listening", "data": {"streams": ["trade_updates"]}}
  <- {"stream": "trade_updates", "data": {"event": "fill", "execution_id": ..., "order": {...},
      "timestamp": ..., "price": ..., "qty": ..., "position_qty": ...}}

Test hooks: `fill()` executes (part of) an order and streams the event, `fail_next()`
injects 429/5xx answers, `hold_next_order()` accepts an order but delays the answer
(the window in which a client can die), `answer_next_order_with()` places an order but
answers with an error status (a gateway timeout after the venue took it),
`replay_last_event()` re-sends a stream event, and `auto_fill` (symbol -> price) makes
a liquid market: each new order is filled on arrival (`auto_fill_ratio` of it).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from websockets.sync.server import ServerConnection, serve

from tests.fakes.loopback import LoopbackHTTPServer

KEY_ID = "PKTESTKEY"
SECRET = "test-secret"
OPEN = {"new", "accepted", "partially_filled", "pending_new"}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class FakeOrder:
    id: str
    client_order_id: str
    symbol: str
    qty: int
    side: str
    type: str
    time_in_force: str
    created_at: str
    status: str = "new"
    filled_qty: int = 0
    notional_filled: Decimal = Decimal(0)
    filled_at: str | None = None
    canceled_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        avg = None if not self.filled_qty else str(self.notional_filled / self.filled_qty)
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": self.created_at,
            "updated_at": _now(),
            "submitted_at": self.created_at,
            "filled_at": self.filled_at,
            "expired_at": None,
            "canceled_at": self.canceled_at,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.symbol)),
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": None,
            "qty": str(self.qty),
            "filled_qty": str(self.filled_qty),
            "filled_avg_price": avg,
            "order_class": "",
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "time_in_force": self.time_in_force,
            "limit_price": None,
            "stop_price": None,
            "status": self.status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }


@dataclass
class FakeAlpacaState:
    """What the fake venue knows; every field is guarded by `lock`."""

    symbols: set[str]
    cash: Decimal = Decimal("100000")
    prices: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[str, FakeOrder] = field(default_factory=dict)
    positions: dict[str, tuple[int, Decimal]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str, int]] = field(default_factory=list)
    hold_seconds: float = 0.0
    answer_status: int = 0
    hold_order_number: tuple[int, float] = (0, 0.0)
    auto_fill: dict[str, str] = field(default_factory=dict)
    auto_fill_ratio: float = 1.0
    lock: threading.RLock = field(default_factory=threading.RLock)


class FakeAlpaca:
    """Start with `with FakeAlpaca({...}) as fake:`; `fake.url` / `fake.stream_url`."""

    def __init__(self, symbols: set[str], cash: Decimal = Decimal("100000")) -> None:
        self.state = FakeAlpacaState(symbols=set(symbols), cash=cash)
        self._listeners: list[ServerConnection] = []
        self._events: list[bytes] = []
        self._sent: dict[ServerConnection, int] = {}  # frames emitted to each listener
        # Seconds each trade update spends in flight (a slow network or a loaded machine);
        # frames still arrive in order, later than the REST answer that caused them.
        self.stream_delay = 0.0
        self._in_flight: queue.Queue[tuple[float, ServerConnection | None, bytes]] = queue.Queue()
        self._http = LoopbackHTTPServer(("127.0.0.1", 0), self._handler())
        self._ws = serve(self._stream_handler, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self.stream_url = f"ws://127.0.0.1:{self._ws.socket.getsockname()[1]}/stream"
        self._threads = [
            threading.Thread(target=self._http.serve_forever, daemon=True),
            threading.Thread(target=self._ws.serve_forever, daemon=True),
            threading.Thread(target=self._deliver, daemon=True),
        ]

    def __enter__(self) -> FakeAlpaca:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._in_flight.put((0.0, None, b""))
        self._ws.shutdown()
        self._http.shutdown()
        self._http.server_close()

    # ----- test hooks ------------------------------------------------------------------
    @property
    def orders_received(self) -> int:
        """Orders the venue accepted (each client order id at most once)."""
        with self.state.lock:
            return len(self.state.orders)

    def posts(self) -> int:
        """POST /v2/orders requests received, successful or not."""
        with self.state.lock:
            return sum(1 for m, p in self.state.requests if m == "POST" and p == "/v2/orders")

    def fail_next(self, method: str, path_prefix: str, status: int, times: int = 1) -> None:
        """Answer the next `times` matching requests with `status` before doing anything."""
        with self.state.lock:
            self.state.failures.extend([(method, path_prefix, status)] * times)

    def hold_next_order(self, seconds: float) -> None:
        """Accept the next order, then wait `seconds` before answering."""
        with self.state.lock:
            self.state.hold_seconds = seconds

    def hold_order(self, number: int, seconds: float) -> None:
        """Accept the `number`-th order received (1-based), then wait before answering."""
        with self.state.lock:
            self.state.hold_order_number = (number, seconds)

    def answer_next_order_with(self, status: int) -> None:
        """Place the next order, but answer the POST with `status` (e.g. 504)."""
        with self.state.lock:
            self.state.answer_status = status

    def client_ids(self) -> list[str]:
        """Client order ids of every order received, in arrival order."""
        with self.state.lock:
            return [o.client_order_id for o in self.state.orders.values()]

    def order_by_client_id(self, cid: str) -> FakeOrder | None:
        """The venue's order for a client id."""
        with self.state.lock:
            return next((o for o in self.state.orders.values() if o.client_order_id == cid), None)

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Poll `predicate()` until true (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("fake alpaca: condition not met in time")
            time.sleep(0.02)

    @property
    def events_sent(self) -> int:
        """Trade-update frames emitted to the newest listener (the live client)."""
        with self.state.lock:
            return self._sent.get(self._listeners[-1], 0) if self._listeners else 0

    def wait_delivered(self, received: Callable[[], int], timeout: float = 30.0) -> None:
        """Block until the client has received every stream frame sent so far.

        `received` counts the frames the client took in (`AlpacaBroker.events_received`).
        A fake clock calls this before it moves time on, so what the venue reported
        before a moment is booked before the next one, however slow the machine is.
        """
        self.wait_for(lambda: received() >= self.events_sent, timeout)

    def wait_for_listener(self, timeout: float = 10.0) -> None:
        """Block until a stream client has authenticated and listens to trade_updates."""
        self.wait_for(lambda: bool(self._listeners), timeout)

    def fill(self, cid: str, qty: int, price: str) -> dict[str, Any]:
        """Execute `qty` of an order at `price`; stream partial_fill or fill."""
        with self.state.lock:
            order = self.order_by_client_id(cid)
            assert order is not None and order.status in OPEN, f"cannot fill {cid}"
            px = Decimal(price)
            order.filled_qty += qty
            order.notional_filled += px * qty
            done = order.filled_qty >= order.qty
            order.status = "filled" if done else "partially_filled"
            if done:
                order.filled_at = _now()
            sign = 1 if order.side == "buy" else -1
            held, cost = self.state.positions.get(order.symbol, (0, Decimal(0)))
            held += sign * qty
            cost += sign * qty * px
            self.state.positions[order.symbol] = (held, cost)
            self.state.cash -= sign * qty * px
            self.state.prices[order.symbol] = px
            event = {
                "event": "fill" if done else "partial_fill",
                "execution_id": str(uuid.uuid4()),
                "order": order.to_json(),
                "timestamp": _now(),
                "price": str(px),
                "qty": str(qty),
                "position_qty": str(held),
            }
        self._broadcast(event)
        return event

    def replay_last_event(self) -> None:
        """Send the last stream event again (a venue that repeats itself)."""
        if self._events:
            self._send_all(self._events[-1])

    # ----- REST ------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, body: Any = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with fake.state.lock:
                    fake.state.requests.append((method, url.path))
                    injected = fake._take_failure(method, url.path)
                if injected:
                    self._reply(injected, {"code": injected * 100000, "message": "injected"})
                    return
                if (
                    self.headers.get("APCA-API-KEY-ID") != KEY_ID
                    or self.headers.get("APCA-API-SECRET-KEY") != SECRET
                ):
                    self._reply(401, {"code": 40110000, "message": "request is not authorized"})
                    return
                status, reply, hold = fake._dispatch(method, url.path, parse_qs(url.query), body)
                if hold:
                    time.sleep(hold)
                self._reply(status, reply)

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return Handler

    def _take_failure(self, method: str, path: str) -> int:
        for i, (m, prefix, status) in enumerate(self.state.failures):
            if m == method and path.startswith(prefix):
                del self.state.failures[i]
                return status
        return 0

    def _dispatch(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, float]:
        with self.state.lock:
            if method == "POST" and path == "/v2/orders":
                return self._place(body)
            if method == "GET" and path == "/v2/orders:by_client_order_id":
                order = self.order_by_client_id(query.get("client_order_id", [""])[0])
                return self._one(order)
            if method == "GET" and path == "/v2/orders":
                wanted = query.get("status", ["open"])[0]
                orders = [
                    o.to_json()
                    for o in self.state.orders.values()
                    if wanted == "all" or (o.status in OPEN) == (wanted == "open")
                ]
                return 200, orders, 0.0
            if path.startswith("/v2/orders/"):
                order = self.state.orders.get(path.removeprefix("/v2/orders/"))
                if method == "GET":
                    return self._one(order)
                if method == "DELETE":
                    return self._cancel(order)
            if method == "GET" and path == "/v2/positions":
                return 200, [self._position(s) for s in sorted(self.state.positions)], 0.0
            if method == "GET" and path == "/v2/account":
                return 200, self._account(), 0.0
        return 404, {"code": 40410000, "message": "endpoint not found"}, 0.0

    def _one(self, order: FakeOrder | None) -> tuple[int, Any, float]:
        if order is None:
            return 404, {"code": 40410000, "message": "order not found"}, 0.0
        return 200, order.to_json(), 0.0

    def _place(self, body: dict[str, Any]) -> tuple[int, Any, float]:
        cid = body.get("client_order_id") or str(uuid.uuid4())
        if self.order_by_client_id(cid) is not None:
            return 422, {"code": 40010001, "message": "client_order_id must be unique"}, 0.0
        symbol = body.get("symbol", "")
        if symbol not in self.state.symbols:
            return 422, {"code": 40010001, "message": f'asset "{symbol}" not found'}, 0.0
        qty = int(Decimal(str(body["qty"])))
        price = self.state.prices.get(symbol, Decimal(0))
        if body["side"] == "buy" and qty * price > self._buying_power():
            return 403, {"code": 40310000, "message": "insufficient buying power"}, 0.0
        order = FakeOrder(
            id=str(uuid.uuid4()),
            client_order_id=cid,
            symbol=symbol,
            qty=qty,
            side=body["side"],
            type=body.get("type", "market"),
            time_in_force=body.get("time_in_force", "day"),
            created_at=_now(),
            status="accepted",
        )
        self.state.orders[order.id] = order
        hold, self.state.hold_seconds = self.state.hold_seconds, 0.0
        if self.state.hold_order_number[0] == len(self.state.orders):
            hold = self.state.hold_order_number[1]
        self._broadcast({"event": "new", "order": order.to_json(), "timestamp": _now()})
        price = self.state.auto_fill.get(symbol)
        if price is not None and order.type == "market":
            qty = int(order.qty * self.state.auto_fill_ratio)
            if qty > 0:
                self.fill(cid, qty, price)
        status, self.state.answer_status = self.state.answer_status, 0
        if status:
            return status, {"code": status * 100000, "message": "gateway timeout"}, hold
        return 200, order.to_json(), hold

    def _cancel(self, order: FakeOrder | None) -> tuple[int, Any, float]:
        if order is None:
            return 404, {"code": 40410000, "message": "order not found"}, 0.0
        if order.status not in OPEN:
            return 422, {"code": 42210000, "message": "order is not cancelable"}, 0.0
        order.status = "canceled"
        order.canceled_at = _now()
        self._broadcast({"event": "canceled", "order": order.to_json(), "timestamp": _now()})
        return 204, None, 0.0

    def _position(self, symbol: str) -> dict[str, Any]:
        qty, cost = self.state.positions[symbol]
        price = self.state.prices.get(symbol, Decimal(0))
        avg = cost / qty if qty else Decimal(0)
        return {
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)),
            "symbol": symbol,
            "exchange": "ARCA",
            "asset_class": "us_equity",
            "asset_marginable": True,
            "avg_entry_price": str(avg),
            "qty": str(qty),
            "side": "long" if qty >= 0 else "short",
            "market_value": str(qty * price),
            "cost_basis": str(cost),
            "unrealized_pl": str(qty * price - cost),
            "unrealized_plpc": "0",
            "unrealized_intraday_pl": "0",
            "unrealized_intraday_plpc": "0",
            "current_price": str(price),
            "lastday_price": str(price),
            "change_today": "0",
            "qty_available": str(qty),
        }

    def _equity(self) -> Decimal:
        held = sum(
            (
                q * self.state.prices.get(s, Decimal(0))
                for s, (q, _) in self.state.positions.items()
            ),
            Decimal(0),
        )
        return self.state.cash + held

    def _buying_power(self) -> Decimal:
        gross = sum(
            (
                abs(q * self.state.prices.get(s, Decimal(0)))
                for s, (q, _) in self.state.positions.items()
            ),
            Decimal(0),
        )
        return 2 * self._equity() - gross

    def _account(self) -> dict[str, Any]:
        equity = self._equity()
        return {
            "id": "8f3c1a2e-0000-4000-8000-000000000001",
            "account_number": "PA3FAKE0001",
            "status": "ACTIVE",
            "crypto_status": "ACTIVE",
            "currency": "USD",
            "buying_power": str(self._buying_power()),
            "regt_buying_power": str(self._buying_power()),
            "daytrading_buying_power": "0",
            "non_marginable_buying_power": str(self.state.cash),
            "cash": str(self.state.cash),
            "accrued_fees": "0",
            "portfolio_value": str(equity),
            "pattern_day_trader": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "created_at": "2024-01-02T14:30:00Z",
            "trade_suspended_by_user": False,
            "multiplier": "2",
            "shorting_enabled": True,
            "equity": str(equity),
            "last_equity": str(equity),
            "long_market_value": "0",
            "short_market_value": "0",
            "initial_margin": "0",
            "maintenance_margin": "0",
            "last_maintenance_margin": "0",
            "sma": "0",
            "daytrade_count": 0,
        }

    # ----- stream ----------------------------------------------------------------------
    def _stream_handler(self, conn: ServerConnection) -> None:
        auth = json.loads(conn.recv())
        data = auth.get("data", {})
        ok = (
            auth.get("action") == "authenticate"
            and data.get("key_id") == KEY_ID
            and data.get("secret_key") == SECRET
        )
        status = "authorized" if ok else "unauthorized"
        reply = {"stream": "authorization", "data": {"status": status, "action": "authenticate"}}
        conn.send(json.dumps(reply).encode())
        if not ok:
            conn.close()
            return
        for raw in conn:
            msg = json.loads(raw)
            if msg.get("action") == "listen":
                streams = msg.get("data", {}).get("streams", [])
                conn.send(
                    json.dumps({"stream": "listening", "data": {"streams": streams}}).encode()
                )
                if "trade_updates" in streams:
                    with self.state.lock:
                        self._listeners.append(conn)
        with self.state.lock:
            if conn in self._listeners:
                self._listeners.remove(conn)

    def _broadcast(self, data: dict[str, Any]) -> None:
        frame = json.dumps({"stream": "trade_updates", "data": data}).encode()
        self._events.append(frame)
        self._send_all(frame)

    def _send_all(self, frame: bytes) -> None:
        with self.state.lock:
            listeners = list(self._listeners)
            for conn in listeners:  # counted when emitted, so a frame in flight is awaited
                self._sent[conn] = self._sent.get(conn, 0) + 1
        if self.stream_delay > 0:
            due = time.monotonic() + self.stream_delay
            for conn in listeners:
                self._in_flight.put((due, conn, frame))
            return
        for conn in listeners:
            self._send(conn, frame)

    def _deliver(self) -> None:
        """Send delayed frames in order once their time in flight is over."""
        while True:
            due, conn, frame = self._in_flight.get()
            if conn is None:
                return
            time.sleep(max(0.0, due - time.monotonic()))
            self._send(conn, frame)

    def _send(self, conn: ServerConnection, frame: bytes) -> None:
        try:
            conn.send(frame)
        except Exception:  # a client that went away; it reconnects on its own
            with self.state.lock:
                if conn in self._listeners:
                    self._listeners.remove(conn)
