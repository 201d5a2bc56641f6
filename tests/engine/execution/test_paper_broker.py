from datetime import date, datetime
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
