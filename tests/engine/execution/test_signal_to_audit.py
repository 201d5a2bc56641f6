"""Must show: Signal -> allocator -> risk -> OMS -> Broker -> TCA -> audit, end to end,
against the paper broker and against the fake Alpaca server (real alpaca-py client)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from qgtm.core.config import Config
from qgtm.core.universe import load_universe
from qgtm.engine.live.engine import TradingEngine
from tests.engine.execution.alpaca_desk import add_minute_bars, sliced_parents, work_the_window
from tests.fakes.alpaca import KEY_ID, SECRET, FakeAlpaca
from tests.fakes.alpaca_data import alpaca_data_fake


def _audit(data_dir: Path) -> list[tuple[str, dict]]:
    conn = sqlite3.connect(data_dir / "state.sqlite")
    try:
        rows = conn.execute("SELECT event, payload FROM audit ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [(e, json.loads(p)) for e, p in rows]


def _assert_every_order_runs_the_whole_sequence(data_dir: Path) -> int:
    conn = sqlite3.connect(data_dir / "state.sqlite")
    try:
        signals = conn.execute("SELECT count(*) FROM signals").fetchone()[0]
        orders = conn.execute(  # orders the broker has finished with
            "SELECT client_order_id FROM orders WHERE status IN ('FILLED', 'EXPIRED')"
        ).fetchall()
        tca = conn.execute("SELECT count(*) FROM tca").fetchone()[0]
    finally:
        conn.close()
    assert signals > 0 and orders
    events = _audit(data_dir)
    for (cid,) in orders:
        mine = [e for e, p in events if p.get("client_order_id") == cid]
        assert mine[0] == "ORDER_SUBMITTED", (cid, mine)
        assert "ORDER_FILLED" in mine, (cid, mine)
        assert mine[-1] == "TCA_RESULT", (cid, mine)
        assert mine.count("TCA_RESULT") == 1
    assert tca == len(orders)
    return len(orders)


def test_the_sequence_runs_against_the_paper_broker(tmp_path: Path, short_config: Config):
    engine = TradingEngine(short_config, tmp_path)
    for _ in range(3):
        engine.step()
    engine.close()
    assert _assert_every_order_runs_the_whole_sequence(tmp_path) > 0


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    with FakeAlpaca(set(load_universe().symbols)) as server:
        yield server


def alpaca_config(config: Config, fake: FakeAlpaca) -> Config:
    execution = replace(
        config.execution, broker="alpaca", alpaca_url=fake.url, alpaca_stream_url=fake.stream_url
    )
    return replace(config, execution=execution)


def fill_everything_at_the_open(fake: FakeAlpaca, engine: TradingEngine) -> int:
    """Act as the market: fill each open order at the next session's open."""
    index = engine.next_index
    opens = dict(zip(engine.panel.symbols, engine.panel.open[index], strict=True))
    open_orders = [o for o in list(fake.state.orders.values()) if o.status == "accepted"]
    for order in open_orders:
        fake.fill(order.client_order_id, order.qty, f"{opens[order.symbol]:.4f}")
    return len(open_orders)


@pytest.fixture
def rich_fake() -> Iterator[FakeAlpaca]:
    """The venue with the engine's whole capital, so no child meets the buying-power check."""
    with FakeAlpaca(set(load_universe().symbols), cash=Decimal("10000000")) as server:
        yield server


def test_the_sequence_runs_against_alpaca_with_sliced_vwap_parents(
    tmp_path: Path, short_config: Config, rich_fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch
):
    """Signal -> allocator -> risk -> OMS -> Alpaca (market orders, and VWAP/TWAP parents
    released in children on the algo clock) -> fills on the stream -> TCA against Alpaca
    minute bars -> audit."""
    fake = rich_fake
    minute_bars: dict = {}
    data = alpaca_data_fake(minute_bars=minute_bars)
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    monkeypatch.setenv("QGTM_ALPACA_DATA_BASE_URL", data.url)
    engine = TradingEngine(alpaca_config(short_config, fake), tmp_path)
    try:
        fake.wait_for_listener()
        engine.step()  # decides; market orders sent, algo parents planned
        windows = sliced_parents(engine)
        assert windows, "the demo book should trade some orders as VWAP/TWAP"
        vwaps = add_minute_bars(minute_bars, engine, min(s for s, _ in windows.values()))
        market = fake.orders_received
        filled = fill_everything_at_the_open(fake, engine)
        fake.wait_for(lambda: engine.broker._updates.qsize() >= 2 * filled)
        work_the_window(engine, fake)
        engine.step()  # the next session books whatever is left on the stream
    finally:
        engine.close()
        data.close()
    assert market == filled > 0
    conn = sqlite3.connect(tmp_path / "state.sqlite")
    try:
        children = conn.execute(
            "SELECT parent_id, count(*), sum(quantity) FROM child_slices "
            "WHERE status != 'PLANNED' GROUP BY parent_id"
        ).fetchall()
        parents = dict(conn.execute("SELECT client_order_id, quantity FROM orders").fetchall())
        statuses: dict[str, set[str]] = {}
        for parent, status in conn.execute("SELECT parent_id, status FROM child_slices"):
            statuses.setdefault(parent, set()).add(status)
        tca = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT client_order_id, vwap_source, vwap_price, symbol FROM tca"
            ).fetchall()
        }
    finally:
        conn.close()
    assert {cid for cid, _, _ in children} == set(windows)
    for cid, n, qty in children:
        assert n > 1 and qty == parents[cid]  # no ADV known: uncapped, all shares sliced
        assert statuses[cid] == {"FILLED"}
        assert tca[cid][0] == "minute_bar_vwap"
        assert tca[cid][1] == pytest.approx(vwaps[tca[cid][2]], abs=1e-4)
    # Every child id reached the venue exactly once.
    ids = fake.client_ids()
    assert len(ids) == len(set(ids))
    day_one = next(iter(windows)).split("-")[1]
    first = [i for i in ids if i.split("-")[1] == day_one]
    assert len(first) == market + sum(n for _, n, _ in children)
    events = _audit(tmp_path)
    for cid in windows:
        mine = [e for e, p in events if p.get("client_order_id") == cid]
        assert mine[0] == "ORDER_SUBMITTED" and mine[-1] == "TCA_RESULT", (cid, mine)
        assert "CHILD_SUBMITTED" in mine and "ORDER_FILLED" in mine
    _assert_every_order_runs_the_whole_sequence(tmp_path)
    held = {s: q for s, q in engine.book.quantities().items() if q}
    assert held == {s: q for s, (q, _) in fake.state.positions.items() if q}


def test_the_sequence_runs_against_alpaca(
    tmp_path: Path, short_config: Config, fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    engine = TradingEngine(alpaca_config(short_config, fake), tmp_path)
    try:
        fake.wait_for_listener()
        engine.step()  # decides; orders committed, then sent to Alpaca
        sent = fake.orders_received
        filled = fill_everything_at_the_open(fake, engine)
        fake.wait_for(lambda: engine.broker._updates.qsize() >= 2 * filled)
        engine.step()  # books the fills from the trade_updates stream
    finally:
        engine.close()
    assert sent == filled > 0
    assert _assert_every_order_runs_the_whole_sequence_for(tmp_path, sent)


def _assert_every_order_runs_the_whole_sequence_for(data_dir: Path, sent: int) -> bool:
    """Market orders of the first decision: exactly submitted, filled, analysed."""
    conn = sqlite3.connect(data_dir / "state.sqlite")
    try:
        first_day = conn.execute("SELECT min(decision_date) FROM orders").fetchone()[0]
        cids = [
            r[0]
            for r in conn.execute(
                "SELECT client_order_id FROM orders JOIN execution_orders USING "
                "(client_order_id) WHERE decision_date = ? AND algo = 'MARKET'",
                (first_day,),
            )
        ]
    finally:
        conn.close()
    events = _audit(data_dir)
    assert len(cids) == sent
    for cid in cids:
        mine = [e for e, p in events if p.get("client_order_id") == cid]
        assert mine == ["ORDER_SUBMITTED", "ORDER_FILLED", "TCA_RESULT"], (cid, mine)
    return True
