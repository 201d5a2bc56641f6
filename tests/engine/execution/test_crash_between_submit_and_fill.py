"""Must show: kill the engine between submit and fill, restart it, and find exactly one
order at the broker per decision and every fill booked once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from qgtm.core.config import Config
from qgtm.core.universe import load_universe
from qgtm.engine.live.engine import TradingEngine
from tests.engine.execution.alpaca_desk import work_the_window
from tests.fakes.alpaca import KEY_ID, SECRET, FakeAlpaca

CHILD = Path(__file__).with_name("alpaca_engine_child.py")
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    with FakeAlpaca(set(load_universe().symbols), cash=Decimal("10000000")) as server:
        yield server


def _rows(data_dir: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(data_dir / "state.sqlite")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_sigkill_after_submit_then_restart_sends_nothing_twice_and_books_fills_once(
    tmp_path: Path, short_config: Config, fake: FakeAlpaca, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    # The venue takes the first order but holds its answer: the engine is mid-submit.
    fake.hold_next_order(60)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(tmp_path), fake.url, fake.stream_url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        fake.wait_for(lambda: fake.orders_received == 1, timeout=60)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert b"stepped" not in child.stdout.read()
    committed = _rows(tmp_path, "SELECT client_order_id, status FROM orders")
    assert len(committed) > 1
    assert {status for _, status in committed} == {"NEW"}  # nothing acknowledged
    first = next(iter(fake.state.orders.values())).client_order_id

    config = replace(
        short_config,
        execution=replace(
            short_config.execution,
            broker="alpaca",
            alpaca_url=fake.url,
            alpaca_stream_url=fake.stream_url,
        ),
    )
    engine = TradingEngine(config, tmp_path)  # restart: recover + dispatch
    try:
        fake.wait_for_listener()
        algo = dict(engine.state.conn.execute("SELECT client_order_id, algo FROM execution_orders"))
        market = sorted(cid for cid, _ in committed if algo[cid] == "MARKET")
        # Exactly one order per market decision at the venue; the in-flight one was not
        # resent. VWAP/TWAP parents wait for their window (next session) as children.
        assert fake.orders_received == len(market)
        assert fake.posts() == len(market)
        assert sorted(fake.client_ids()) == market
        index = engine.next_index
        opens = dict(zip(engine.panel.symbols, engine.panel.open[index], strict=True))
        for order in list(fake.state.orders.values()):
            fake.fill(order.client_order_id, order.qty, f"{opens[order.symbol]:.4f}")
        fake.replay_last_event()  # the venue repeats a fill
        expected = 2 * len(market) - 1 + 1  # new/accepted after restart + fills + replay
        fake.wait_for(lambda: engine.broker._updates.qsize() >= expected)
        work_the_window(engine, fake)  # the algo clock releases the sliced children
        engine.step()
    finally:
        engine.close()

    fills = _rows(tmp_path, "SELECT client_order_id, quantity FROM fills")
    ordered = dict(_rows(tmp_path, "SELECT client_order_id, quantity FROM orders"))
    per_order: dict[str, int] = {}
    for cid, qty in fills:
        per_order[cid] = per_order.get(cid, 0) + qty
    first_day = {cid for cid, _ in committed}
    assert {cid: q for cid, q in per_order.items() if cid in first_day} == {
        cid: ordered[cid] for cid in first_day
    }
    assert first in per_order
    ids = fake.client_ids()
    assert len(ids) == len(set(ids))  # no child or parent reached the venue twice
    held = {s: q for s, q in engine.book.quantities().items() if q}
    assert held == {s: q for s, (q, _) in fake.state.positions.items() if q}
