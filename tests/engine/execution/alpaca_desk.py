"""Helpers for engine tests on the fake Alpaca: act as the market, drive the algo clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from qgtm.core.enums import OrderStatus
from qgtm.engine.execution.slicer import AlgoClock
from qgtm.engine.live.engine import TradingEngine
from tests.fakes.alpaca import FakeAlpaca
from tests.fakes.alpaca_data import minute_bar


class FakeClock:
    """Wall clock stand-in: `sleep` moves time forward instead of waiting.

    `settle` (e.g. `stream_settled(fake, broker)`) runs before time moves on: it waits
    until the venue's stream has delivered everything it sent, so what happened at one
    moment is booked before the next however slow the machine is.
    """

    def __init__(self, start: datetime, settle: Callable[[], None] | None = None) -> None:
        self.now = start
        self.settle = settle

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        if self.settle is not None:
            self.settle()
        self.now += timedelta(seconds=seconds)


def stream_settled(fake: FakeAlpaca, broker: Any) -> Callable[[], None]:
    """A `settle` hook: wait until `broker` received every trade update `fake` sent."""
    return lambda: fake.wait_delivered(lambda: broker.events_received)


def sliced_parents(engine: TradingEngine) -> dict[str, tuple[datetime, datetime]]:
    """Sliced parents still working: client id -> (window start, window end)."""
    rows = engine.state.conn.execute(
        "SELECT parent_id, window_start, window_end FROM algo_parents WHERE phase = 'WORKING'"
    ).fetchall()
    return {
        cid: (datetime.fromisoformat(start), datetime.fromisoformat(end))
        for cid, start, end in rows
    }


def next_opens(engine: TradingEngine) -> dict[str, str]:
    """Each symbol's open of the next session, as the fake's fill price."""
    index = engine.next_index
    return {
        s: f"{p:.4f}" for s, p in zip(engine.panel.symbols, engine.panel.open[index], strict=True)
    }


def add_minute_bars(
    store: dict, engine: TradingEngine, start: datetime, volume: int = 5_000
) -> dict[str, float]:
    """Two minute bars per symbol at the window's start: open, and open x 1.01 (3x volume).

    Returns each symbol's window VWAP, (p + 1.01 p x 3) / 4, for the assertions.
    """
    vwaps = {}
    for symbol, text in next_opens(engine).items():
        p = round(float(text), 4)
        t0 = start.astimezone(UTC)
        store[symbol] = [
            minute_bar(t0.isoformat().replace("+00:00", "Z"), p, volume),
            minute_bar(
                (t0 + timedelta(hours=2)).isoformat().replace("+00:00", "Z"),
                round(p * 1.01, 4),
                3 * volume,
            ),
        ]
        vwaps[symbol] = (p * volume + round(p * 1.01, 4) * 3 * volume) / (4 * volume)
    return vwaps


def work_the_window(engine: TradingEngine, fake: FakeAlpaca, timeout: float = 30.0) -> None:
    """Act as a liquid market and run the algo clock through every sliced parent's window.

    Every new order fills on arrival at the next session's open; the fake clock jumps
    from child release to child release; then the stream is given time (bounded, real)
    until every sliced parent is finished.
    """
    windows = sliced_parents(engine)
    if not windows:
        return
    fake.state.auto_fill.update(next_opens(engine))
    start = min(s for s, _ in windows.values()) - timedelta(minutes=1)
    end = max(e for _, e in windows.values()) + timedelta(minutes=1)
    settle = stream_settled(fake, engine.broker)
    clock = FakeClock(start, settle)
    runner = AlgoClock(engine.oms, clock, clock.sleep, idle=3600, lock=engine._step_lock)
    runner.run_until(end)
    deadline = time.monotonic() + timeout
    terminal = {OrderStatus.FILLED, OrderStatus.EXPIRED, OrderStatus.CANCELED}
    while any(engine.oms.store.order(cid).status not in terminal for cid in windows):
        assert time.monotonic() < deadline, "sliced parents did not finish"
        settle()
        runner.tick()
