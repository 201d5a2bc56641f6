"""Must show: Signal -> allocator -> risk -> OMS -> Broker -> TCA -> audit, end to end,
against the paper broker and against the fake Alpaca server (real alpaca-py client)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from qgtm.core.config import Config
from qgtm.core.universe import load_universe
from qgtm.engine.live.engine import TradingEngine
from tests.fakes.alpaca import KEY_ID, SECRET, FakeAlpaca


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
    held = {s: q for s, q in engine.book.quantities().items() if q}
    assert held == {s: q for s, (q, _) in fake.state.positions.items() if q}


def _assert_every_order_runs_the_whole_sequence_for(data_dir: Path, sent: int) -> bool:
    conn = sqlite3.connect(data_dir / "state.sqlite")
    try:
        first_day = conn.execute("SELECT min(decision_date) FROM orders").fetchone()[0]
        cids = [
            r[0]
            for r in conn.execute(
                "SELECT client_order_id FROM orders WHERE decision_date = ?", (first_day,)
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
