"""The Alpaca adapter end to end: real alpaca-py against the loopback fake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal

import pytest

from qgtm.core.enums import OrderStatus, Side
from qgtm.core.types import Order
from qgtm.engine.execution.brokers.alpaca import AlpacaBroker
from qgtm.engine.execution.brokers.base import Broker, BrokerError
from tests.fakes.alpaca import KEY_ID, SECRET, FakeAlpaca

T = datetime(2024, 3, 5, 15, 30)


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    with FakeAlpaca({"GLD", "SLV", "USO"}) as server:
        yield server


def _broker(fake: FakeAlpaca, **kw) -> AlpacaBroker:
    broker = AlpacaBroker(
        KEY_ID, SECRET, url=fake.url, stream_url=fake.stream_url, backoff_seconds=0.01, **kw
    )
    if kw.get("stream", True):
        fake.wait_for_listener()
    return broker


def _order(cid: str = "abc-20240305-GLD-0", qty: int = 10, symbol: str = "GLD") -> Order:
    return Order(cid, symbol, Side.BUY, qty, T, date(2024, 3, 5))


def test_the_adapter_satisfies_the_broker_protocol(fake: FakeAlpaca):
    broker = _broker(fake, stream=False)
    assert isinstance(broker, Broker)


def test_submit_fill_positions_and_account_through_rest_and_the_stream(fake: FakeAlpaca):
    broker = _broker(fake)
    try:
        placed = broker.submit(_order())
        fake.fill("abc-20240305-GLD-0", 4, "200.10")
        fake.fill("abc-20240305-GLD-0", 6, "200.20")
        broker.wait_for_updates(3)
        updates = broker.drain_updates()
        assert placed.status is OrderStatus.ACCEPTED
        assert [u.status for u in updates] == [
            OrderStatus.ACCEPTED,
            OrderStatus.PARTIALLY_FILLED,
            OrderStatus.FILLED,
        ]
        assert [u.fill.quantity for u in updates[1:]] == [4, 6]
        assert updates[2].fill.price == Decimal("200.20")
        assert updates[2].cumulative_filled == 10
        assert broker.positions() == {"GLD": 10}
        assert broker.account().cash == Decimal("100000") - Decimal("2001.60")
        assert broker.get_order("abc-20240305-GLD-0").status is OrderStatus.FILLED
    finally:
        broker.close()


def test_unknown_order_lookup_is_none_and_open_orders_are_listed(fake: FakeAlpaca):
    broker = _broker(fake, stream=False)
    broker.submit(_order())
    assert broker.get_order("never-sent") is None
    assert [o.client_order_id for o in broker.open_orders()] == ["abc-20240305-GLD-0"]


def test_a_rate_limited_submit_backs_off_and_places_exactly_one_order(fake: FakeAlpaca):
    broker = _broker(fake, stream=False)
    fake.fail_next("POST", "/v2/orders", 429, times=2)
    update = broker.submit(_order())
    assert update.status is OrderStatus.ACCEPTED
    assert fake.posts() == 3
    assert fake.orders_received == 1


def test_a_5xx_after_the_order_landed_is_resolved_by_lookup_not_by_resending(
    fake: FakeAlpaca,
):
    broker = _broker(fake, stream=False)
    # The venue takes the order, but the client sees a gateway error: ambiguous.
    fake.hold_next_order(0)
    broker.submit(_order())  # the order exists now
    fake.fail_next("POST", "/v2/orders", 503)
    update = broker.submit(_order())  # a blind retry of the same decision
    assert update.status is OrderStatus.ACCEPTED
    assert fake.orders_received == 1
    assert fake.posts() == 2  # the 503 attempt; the look-up found it, no third POST


def test_a_5xx_before_the_order_landed_is_looked_up_then_resent_once(fake: FakeAlpaca):
    broker = _broker(fake, stream=False)
    fake.fail_next("POST", "/v2/orders", 500)
    update = broker.submit(_order())
    assert update.status is OrderStatus.ACCEPTED
    assert fake.orders_received == 1
    assert fake.posts() == 2


def test_reads_retry_through_server_errors(fake: FakeAlpaca):
    broker = _broker(fake, stream=False)
    fake.fail_next("GET", "/v2/positions", 502, times=2)
    assert broker.positions() == {}


def test_venue_rejections_come_back_as_rejected_with_the_message(fake: FakeAlpaca):
    broker = _broker(fake, stream=False)
    update = broker.submit(_order("x-1", symbol="NOPE"))
    assert update.status is OrderStatus.REJECTED
    assert "not found" in update.reason


def test_persistent_outage_raises_a_broker_error(fake: FakeAlpaca):
    broker = _broker(fake, stream=False, max_attempts=2)
    fake.fail_next("POST", "/v2/orders", 429, times=5)
    with pytest.raises(BrokerError, match="could not place"):
        broker.submit(_order())


def test_cancel_reports_canceled_on_the_stream(fake: FakeAlpaca):
    broker = _broker(fake)
    try:
        broker.submit(_order())
        broker.cancel("abc-20240305-GLD-0")
        broker.wait_for_updates(2)
        assert [u.status for u in broker.drain_updates()][-1] is OrderStatus.CANCELED
    finally:
        broker.close()


def test_bad_keys_are_refused(fake: FakeAlpaca):
    broker = AlpacaBroker("wrong", "keys", url=fake.url, stream=False, max_attempts=1)
    with pytest.raises(Exception, match="not authorized"):
        broker.account()


def test_an_outage_during_dispatch_keeps_the_order_new_and_a_later_dispatch_sends_it_once(
    fake: FakeAlpaca, tmp_path
):
    from qgtm.engine.audit import AuditLog
    from qgtm.engine.execution.algos import Algo
    from qgtm.engine.execution.manager import OrderManager
    from qgtm.engine.state import StateStore

    state = StateStore(tmp_path)
    broker = _broker(fake, stream=False, max_attempts=2)
    oms = OrderManager(state, AuditLog(state.conn), broker, lambda fill: None)
    with state.transaction():
        oms.place(_order(), strategy="tsmom", algo=Algo.MARKET, decision_price=Decimal(200), at=T)
    fake.fail_next("GET", "/v2/orders:by_client_order_id", 503, times=2)  # look-up fails
    fake.fail_next("POST", "/v2/orders", 503, times=1)  # then the first POST is ambiguous
    assert oms.dispatch(T) == 0
    assert [o.client_order_id for o in oms.orders_in(OrderStatus.NEW)] == ["abc-20240305-GLD-0"]
    assert oms.dispatch(T) == 1  # look-up: none; POST 503; look-up: none; POST ok
    assert fake.orders_received == 1
    assert fake.posts() == 2
    assert oms.blotter()[0]["status"] == "ACCEPTED"
    state.close()


def test_a_504_after_the_order_landed_is_looked_up_never_reposted(fake: FakeAlpaca):
    # alpaca-py's default policy would re-POST after a 504; ours hands it only 429s.
    delays: list[float] = []
    broker = _broker(fake, stream=False, sleep=delays.append)
    fake.answer_next_order_with(504)  # the venue placed it; the gateway timed out
    update = broker.submit(_order())
    assert update.status is OrderStatus.ACCEPTED
    assert update.broker_order_id == fake.order_by_client_id("abc-20240305-GLD-0").id
    assert fake.posts() == 1 and fake.orders_received == 1
    assert delays == []  # resolved by the look-up, no backoff needed


def test_5xx_on_submit_backs_off_exponentially_between_look_ups(fake: FakeAlpaca):
    delays: list[float] = []
    broker = _broker(fake, stream=False, sleep=delays.append)
    fake.fail_next("POST", "/v2/orders", 503, times=3)
    update = broker.submit(_order())
    assert update.status is OrderStatus.ACCEPTED
    assert delays == [0.01, 0.02, 0.04]
    assert fake.posts() == 4 and fake.orders_received == 1
    lookups = [p for m, p in fake.state.requests if p == "/v2/orders:by_client_order_id"]
    assert len(lookups) == 3  # one look-up before each resend


def test_429_is_retried_once_by_alpaca_py_then_with_our_backoff(fake: FakeAlpaca):
    delays: list[float] = []
    broker = _broker(fake, stream=False, sleep=delays.append)
    fake.fail_next("POST", "/v2/orders", 429, times=3)
    update = broker.submit(_order())
    assert update.status is OrderStatus.ACCEPTED
    # POST 429 (alpaca-py repeats it) 429 -> our backoff -> 429 (alpaca-py repeats) -> ok
    assert fake.posts() == 4 and fake.orders_received == 1
    assert delays == [0.01]
    # 429 means refused unprocessed: no look-up was needed before resending.
    assert not [p for m, p in fake.state.requests if p == "/v2/orders:by_client_order_id"]


def test_reads_back_off_exponentially_through_5xx(fake: FakeAlpaca):
    delays: list[float] = []
    broker = _broker(fake, stream=False, sleep=delays.append)
    fake.fail_next("GET", "/v2/account", 502, times=2)
    assert broker.account().cash == Decimal("100000")
    assert delays == [0.01, 0.02]
