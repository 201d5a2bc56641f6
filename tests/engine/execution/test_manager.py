from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from qgtm.core import calendar
from qgtm.core.enums import OrderStatus, Side
from qgtm.core.types import Fill, Order
from qgtm.engine.audit import AuditLog
from qgtm.engine.execution.algos import Algo
from qgtm.engine.execution.benchmarks import Benchmarks
from qgtm.engine.execution.brokers.base import OrderUpdate
from qgtm.engine.execution.brokers.paper import PaperBroker, SessionBar
from qgtm.engine.execution.manager import OrderManager
from qgtm.engine.execution.oms import client_order_id
from qgtm.engine.state import StateStore

DECIDED = date(2024, 3, 5)
EXEC_DAY = date(2024, 3, 6)
AT = calendar.decision_time(DECIDED)
BAR = SessionBar(Decimal("100"), Decimal("103"), Decimal("99"), Decimal("102"), 100_000)


class World:
    def __init__(self, tmp_path: Path, cap: float = 0.10) -> None:
        self.state = StateStore(tmp_path)
        self.audit = AuditLog(self.state.conn)
        self.broker = PaperBroker(
            slippage_bps=5, commission_per_share=Decimal("0.01"), participation_cap=cap
        )
        self.booked: list[Fill] = []
        self.oms = OrderManager(self.state, self.audit, self.broker, self.booked.append)

    def place(self, qty: int, algo: Algo, symbol: str = "GLD") -> bool:
        cid = client_order_id("abc", DECIDED, symbol)
        order = Order(cid, symbol, Side.BUY, qty, AT, DECIDED)
        with self.state.transaction():
            return self.oms.place(
                order, strategy="tsmom", algo=algo, decision_price=Decimal("99.50"), at=AT
            )

    def run_session(self) -> None:
        self.broker.execute_session({"GLD": BAR}, EXEC_DAY)
        with self.state.transaction():
            self.oms.process_updates(
                calendar.session_open(EXEC_DAY), {"GLD": Benchmarks.from_bar(BAR)}
            )

    def events(self) -> list[str]:
        return [r.event for r in reversed(self.audit.tail(1000))]


def test_placing_the_same_decision_twice_records_and_sends_one_order(tmp_path: Path):
    world = World(tmp_path)
    assert world.place(100, Algo.MARKET)
    assert not world.place(100, Algo.MARKET)
    assert len(world.broker.open_orders()) == 1
    assert world.events() == ["ORDER_SUBMITTED"]


def test_a_market_order_fills_books_once_and_records_tca(tmp_path: Path):
    world = World(tmp_path)
    world.place(100, Algo.MARKET)
    world.run_session()
    (row,) = world.oms.tca_rows()
    assert world.oms.blotter()[0]["status"] == "FILLED"
    assert [f.quantity for f in world.booked] == [100]
    # fill at 100 * 1.0005 = 100.05; decision 99.50; commission 1.00
    assert row["arrival_cost_bps"] == pytest.approx(5.0)
    assert row["implementation_shortfall_bps"] == pytest.approx(
        (100 * 0.55 + 1.0) / (100 * 99.50) * 1e4
    )
    assert world.events() == ["ORDER_SUBMITTED", "ORDER_FILLED", "TCA_RESULT"]


def test_a_fill_delivered_twice_is_booked_once(tmp_path: Path):
    world = World(tmp_path)
    world.place(100, Algo.MARKET)
    (update,) = world.broker.execute_session({"GLD": BAR}, EXEC_DAY)
    with world.state.transaction():
        world.oms.apply(update, AT)
        world.oms.apply(update, AT)
    assert len(world.booked) == 1
    assert world.events().count("ORDER_FILLED") == 1


def test_a_large_order_is_worked_in_children_and_the_remainder_expires(tmp_path: Path):
    world = World(tmp_path, cap=0.02)  # 2% of 100k shares = at most 2000 shares today
    world.place(3_000, Algo.TWAP)
    world.run_session()
    (blotter,) = world.oms.blotter()
    children = world.oms.children(blotter["client_order_id"])
    filled = sum(c["quantity"] for c in children)
    assert blotter["status"] == "EXPIRED"
    assert blotter["algo"] == "TWAP"
    assert 0 < filled < 3_000
    assert blotter["unfilled"] == 3_000 - filled
    assert blotter["children"] == len(children) > 1
    (tca,) = world.oms.tca_rows()
    assert tca["filled_quantity"] == filled
    assert "ORDER_EXPIRED" in world.events()
    assert world.events()[-1] == "TCA_RESULT"


def test_stale_updates_cannot_move_an_order_backwards(tmp_path: Path):
    world = World(tmp_path)
    world.place(100, Algo.MARKET)
    world.run_session()
    cid = world.oms.blotter()[0]["client_order_id"]
    with world.state.transaction():
        world.oms.apply(OrderUpdate(cid, OrderStatus.ACCEPTED), AT)
        world.oms.apply(OrderUpdate(cid, OrderStatus.CANCELED), AT)
    assert world.oms.blotter()[0]["status"] == "FILLED"


def test_a_rejected_order_is_logged_with_its_reason(tmp_path: Path):
    world = World(tmp_path)
    world.broker.symbols = frozenset({"GLD"})
    world.place(10, Algo.MARKET, symbol="XXX")
    assert world.oms.blotter()[0]["status"] == "REJECTED"
    assert "ORDER_REJECTED" in world.events()
    assert world.oms.tca_rows()[0]["filled_quantity"] == 0


def test_per_strategy_costs_are_notional_weighted(tmp_path: Path):
    world = World(tmp_path)
    world.place(100, Algo.MARKET)
    world.run_session()
    (stats,) = world.oms.tca_by_strategy()
    assert stats["strategy"] == "tsmom"
    assert stats["orders"] == 1
    assert stats["arrival_cost_bps"] == pytest.approx(5.0)


# ----- idempotency under repeats and reordering (property) ---------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(1, 50), min_size=1, max_size=6),
    deliveries=st.lists(st.integers(0, 30), max_size=30),
)
def test_fills_delivered_repeatedly_are_booked_exactly_once(tmp_path_factory, sizes, deliveries):
    world = World(tmp_path_factory.mktemp("oms"))
    world.broker.commit_before_send = False
    total = sum(sizes)
    world.place(total, Algo.MARKET)
    cid = client_order_id("abc", DECIDED, "GLD")
    updates, cumulative = [], 0
    for i, qty in enumerate(sizes):
        cumulative += qty
        fill = Fill(f"exec-{i}", cid, "GLD", Side.BUY, qty, Decimal("100"), Decimal(0), AT)
        status = OrderStatus.FILLED if cumulative == total else OrderStatus.PARTIALLY_FILLED
        updates.append(OrderUpdate(cid, status, fill=fill, cumulative_filled=cumulative))
    # Every execution once, in order, with arbitrary repeats of earlier ones mixed in.
    stream = []
    for i, update in enumerate(updates):
        stream.append(update)
        stream.extend(updates[d % (i + 1)] for d in deliveries[i * 5 : i * 5 + 5])
    with world.state.transaction():
        for update in stream:
            world.oms.apply(update, AT)
    (row,) = world.oms.blotter()
    assert sum(f.quantity for f in world.booked) == total
    assert row["filled_quantity"] == total
    assert row["status"] == "FILLED"
    assert len(world.oms.tca_rows()) == 1
