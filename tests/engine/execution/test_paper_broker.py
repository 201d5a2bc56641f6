from datetime import date, datetime, timedelta
from decimal import Decimal

from qgtm.core.enums import OrderStatus, Side
from qgtm.core.types import Order
from qgtm.engine.execution.brokers.paper import PaperBroker

T = datetime(2024, 3, 5, 15, 30)


def _order(cid: str, side: Side) -> Order:
    return Order(cid, "GLD", side, 10, T, date(2024, 3, 5), status=OrderStatus.SUBMITTED)


def test_market_orders_fill_at_the_next_open_plus_slippage_against_us():
    broker = PaperBroker(slippage_bps=10, commission_per_share=Decimal("0.01"))
    broker.submit(_order("b", Side.BUY))
    broker.submit(_order("s", Side.SELL))
    fills = broker.fill_at_open({"GLD": Decimal("200")}, datetime(2024, 3, 6, 9, 30))
    prices = {f.client_order_id: f.price for f in fills}
    assert prices == {"b": Decimal("200.2000"), "s": Decimal("199.8000")}
    assert fills[0].commission == Decimal("0.1000")
    assert broker.open_orders() == []


def test_submitting_the_same_client_order_id_twice_fills_once():
    broker = PaperBroker(slippage_bps=0, commission_per_share=Decimal(0))
    broker.submit(_order("b", Side.BUY))
    broker.submit(_order("b", Side.BUY))
    assert len(broker.fill_at_open({"GLD": Decimal("200")}, T)) == 1


# ----- realistic simulation ---------------------------------------------------------
from qgtm.core import calendar  # noqa: E402
from qgtm.engine.execution.brokers.paper import SessionBar, bucket_prices  # noqa: E402

DAY = date(2024, 3, 6)
BAR = SessionBar(Decimal("100"), Decimal("103"), Decimal("99"), Decimal("102"), 100_000)


def _algo_order(cid: str, qty: int, algo: str, side: Side = Side.BUY) -> Order:
    return Order(cid, "GLD", side, qty, T, date(2024, 3, 5), order_type=algo)


def _broker(**kw) -> PaperBroker:
    return PaperBroker(slippage_bps=0, commission_per_share=Decimal(0), **kw)


def test_vwap_children_fill_inside_the_bar_within_the_participation_cap():
    broker = _broker(participation_cap=0.10)
    broker.submit(_algo_order("v-0", 5_000, "vwap"))
    updates = broker.execute_session({"GLD": BAR}, DAY)
    fills = [u.fill for u in updates if u.fill]
    assert sum(f.quantity for f in fills) == 5_000
    assert updates[-1].status is OrderStatus.FILLED
    assert all(BAR.low <= f.price <= BAR.high for f in fills)
    assert len({f.fill_id for f in fills}) == len(fills) == 13
    assert fills[0].filled_at == calendar.session_open(DAY)


def test_twap_larger_than_the_cap_allows_expires_with_the_remainder_reported():
    broker = _broker(participation_cap=0.05)  # at most 5% of 100k = 5000 shares a day
    broker.submit(_algo_order("t-0", 8_000, "twap"))
    updates = broker.execute_session({"GLD": BAR}, DAY)
    filled = sum(u.fill.quantity for u in updates if u.fill)
    last = updates[-1]
    assert filled < 8_000
    assert last.status is OrderStatus.EXPIRED
    assert last.remaining_quantity == 8_000 - filled
    assert "unfilled at the end of the window" in last.reason


def test_spread_and_latency_are_charged():
    broker = _broker(spread_bps=10, latency_ms=250)
    broker.submit(_order("b", Side.BUY))
    (update,) = broker.execute_session({"GLD": BAR}, DAY)
    assert update.fill.price == Decimal("100.0500")  # half of 10 bps against us
    assert update.fill.filled_at == calendar.session_open(DAY) + timedelta(milliseconds=250)


def test_bucket_prices_stay_inside_the_days_range():
    spiky = SessionBar(Decimal("100"), Decimal("100.5"), Decimal("99"), Decimal("110"), 1)
    assert max(bucket_prices(spiky)) == Decimal("100.5")


def test_unknown_symbols_are_rejected():
    broker = _broker(symbols={"GLD"})
    update = broker.submit(Order("x", "NOPE", Side.BUY, 1, T, date(2024, 3, 5)))
    assert update.status is OrderStatus.REJECTED
    assert "unknown symbol NOPE" in update.reason
    assert broker.open_orders() == []


def test_orders_outside_market_hours_are_rejected():
    broker = _broker(check_hours=True)
    sunday = Order(
        "s",
        "GLD",
        Side.BUY,
        1,
        datetime(2024, 3, 3, 12, 0, tzinfo=calendar.NEW_YORK),
        date(2024, 3, 3),
    )
    in_hours = Order("h", "GLD", Side.BUY, 1, calendar.decision_time(DAY), DAY)
    assert broker.submit(sunday).status is OrderStatus.REJECTED
    assert broker.submit(in_hours).status is OrderStatus.ACCEPTED


def test_orders_beyond_buying_power_are_rejected_but_reducing_ones_are_not():
    broker = _broker(cash=Decimal("10000"), positions={"GLD": 50}, leverage=1.0)
    broker.update_marks({"GLD": Decimal("100")})  # equity 15000, gross 5000: 10000 to spend
    too_big = broker.submit(Order("big", "GLD", Side.BUY, 101, T, DAY))
    fits = broker.submit(Order("ok", "GLD", Side.BUY, 100, T, DAY))
    reduce = broker.submit(Order("cut", "GLD", Side.SELL, 50, T, DAY))
    assert too_big.status is OrderStatus.REJECTED
    assert "insufficient buying power" in too_big.reason
    assert fits.status is OrderStatus.ACCEPTED
    assert reduce.status is OrderStatus.ACCEPTED


def test_positions_and_account_follow_the_simulated_fills():
    broker = _broker(cash=Decimal("100000"))
    broker.submit(_order("b", Side.BUY))
    broker.execute_session({"GLD": BAR}, DAY)
    broker.update_marks({"GLD": Decimal("102")})
    assert broker.positions() == {"GLD": 10}
    account = broker.account()
    assert account.cash == Decimal("99000")
    assert account.equity == Decimal("100020")
    assert broker.get_order("b").status is OrderStatus.FILLED


def test_cancel_before_the_session_reports_canceled_and_never_fills():
    broker = _broker()
    broker.submit(_order("b", Side.BUY))
    broker.cancel("b")
    assert [u.status for u in broker.drain_updates()] == [OrderStatus.CANCELED]
    assert broker.execute_session({"GLD": BAR}, DAY) == []
