"""Engine commands for the terminal: bars, signals, and the operator's flatten."""

from __future__ import annotations

from pathlib import Path

import pytest

from qgtm.core.config import Config
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.live.queries import FlattenPlanChangedError


@pytest.fixture
def engine(short_config: Config, tmp_path: Path):
    engine = TradingEngine(short_config, tmp_path)
    for _ in range(5):
        engine.step()
    yield engine
    engine.close()


def test_bars_end_at_the_last_processed_session(engine: TradingEngine) -> None:
    bars = engine.call("market.bars", symbol="GLD", lookback=20)
    assert len(bars) == 20
    assert bars[-1].session == engine.current_session
    column = engine.panel.symbols.index("GLD")
    assert bars[-1].close == pytest.approx(engine.panel.close[engine.next_index - 1, column])


def test_bars_of_an_unknown_symbol_are_refused(engine: TradingEngine) -> None:
    with pytest.raises(ValueError, match="unknown symbol 'XYZ'"):
        engine.call("market.bars", symbol="XYZ")


def test_recent_signals_of_one_symbol_come_newest_first(engine: TradingEngine) -> None:
    signals = engine.call("signals.recent", symbol="GLD", limit=10)
    assert signals
    assert {s.symbol for s in signals} == {"GLD"}
    dates = [s.as_of for s in signals]
    assert dates == sorted(dates, reverse=True)
    assert dates[0] == engine.current_session


def test_flatten_preview_closes_every_holding_and_cancels_working_orders(
    engine: TradingEngine,
) -> None:
    plan = engine.call("engine.flatten_preview")
    holdings = engine.book.quantities()
    assert {o.symbol: (o.side, o.quantity) for o in plan.orders} == {
        s: ("SELL" if q > 0 else "BUY", abs(q)) for s, q in holdings.items()
    }
    assert set(plan.cancels) == {o.client_order_id for o in engine.broker.open_orders()}


def test_flatten_goes_through_the_oms_audited_as_operator_and_fills_next_open(
    engine: TradingEngine,
) -> None:
    plan = engine.call("engine.flatten_preview")
    engine.pause()
    engine.call("engine.flatten", expected=list(plan.order_ids))
    rows = engine.state.conn.execute(
        "SELECT client_order_id, status FROM orders WHERE client_order_id LIKE 'OPFLAT-%'"
    ).fetchall()
    assert {r[0] for r in rows} == set(plan.order_ids)
    assert {r[1] for r in rows} <= {"SUBMITTED", "ACCEPTED"}
    (flatten,) = [r for r in engine.audit.tail(200) if r.event == "OPERATOR_FLATTEN"]
    assert flatten.actor == "operator"
    assert flatten.payload == {"orders": list(plan.order_ids), "cancels": list(plan.cancels)}
    assert engine.snapshot().recent_orders[0].client_order_id.startswith("OPFLAT-")
    engine.step()  # the next open fills the closing orders
    statuses = engine.state.conn.execute(
        "SELECT DISTINCT status FROM orders WHERE client_order_id LIKE 'OPFLAT-%'"
    ).fetchall()
    assert statuses == [("FILLED",)]
    cancelled = engine.state.conn.execute(
        "SELECT count(*) FROM fills WHERE client_order_id IN ({})".format(
            ",".join("?" * len(plan.cancels))
        ),
        plan.cancels,
    ).fetchone()[0]
    assert cancelled == 0


def test_flatten_is_refused_when_the_book_changed_since_the_preview(
    engine: TradingEngine,
) -> None:
    with pytest.raises(FlattenPlanChangedError, match="review the flatten again"):
        engine.call("engine.flatten", expected=["not-what-was-previewed"])
    count = engine.state.conn.execute(
        "SELECT count(*) FROM orders WHERE client_order_id LIKE 'OPFLAT-%'"
    ).fetchone()[0]
    assert count == 0


def test_a_second_flatten_in_the_same_session_keeps_the_closing_orders_working(
    engine: TradingEngine,
) -> None:
    first = engine.call("engine.flatten_preview")
    engine.call("engine.flatten", expected=list(first.order_ids))
    second = engine.call("engine.flatten_preview")
    assert second.order_ids == first.order_ids
    assert second.cancels == ()
    engine.call("engine.flatten", expected=list(second.order_ids))
    working = {o.client_order_id for o in engine.broker.open_orders()}
    assert working == set(first.order_ids)
