"""source=alpaca (paper) end to end: the daemon on a fake wall clock against loopback
fakes of Alpaca's trading API + trade_updates stream and its market-data API, driven by
the real alpaca-py clients. Nothing sleeps for a schedule: the test moves the clock."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from qgtm.core.config import ConfigError, check_tradeable, load_config
from qgtm.core.enums import KillTier, Mode, Source
from qgtm.core.universe import load_universe
from qgtm.engine.live.clock import FakeClock
from qgtm.engine.live.daemon import TaskHealth, TradingDaemon
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.portfolio.book import Holding
from tests.engine.execution.alpaca_desk import sliced_parents
from tests.engine.live.alpaca_world import (
    CASH,
    LAST_STORED,
    MONDAY,
    TUESDAY,
    alpaca_config,
    bars_until,
    close_of,
    ny,
    release,
    state_rows,
)
from tests.fakes.alpaca import KEY_ID, SECRET, FakeAlpaca
from tests.fakes.alpaca_data import alpaca_data_fake

ROOT = Path(__file__).resolve().parents[3]
CHILD = Path(__file__).with_name("alpaca_daemon_child.py")


# ----- the gates ----------------------------------------------------------------------
def test_source_alpaca_paper_is_accepted_and_trades_through_the_alpaca_broker():
    config = load_config(None, environ={"QGTM_SOURCE": "alpaca"})
    assert config.source is Source.ALPACA and config.mode is Mode.PAPER
    assert config.execution.broker == "alpaca"  # source=alpaca implies the Alpaca broker
    check_tradeable(config, environ={})  # paper endpoint: no live gate needed


def test_source_alpaca_refuses_the_simulated_broker_and_live_without_every_gate():
    paper_broker = load_config(
        None, environ={"QGTM_SOURCE": "alpaca", "QGTM_EXECUTION__BROKER": "paper"}
    )
    with pytest.raises(ConfigError, match=r"execution\.broker"):
        check_tradeable(paper_broker, environ={})
    live = load_config(None, environ={"QGTM_SOURCE": "alpaca", "QGTM_MODE": "live"})
    with pytest.raises(ConfigError, match="LIVE_TRADING_ENABLED"):
        check_tradeable(live, environ={})
    with pytest.raises(ConfigError, match="LIVE_TRADING_ENABLED"):
        check_tradeable(live, environ={"LIVE_TRADING_ENABLED": "yes"})  # only "true" opens it
    check_tradeable(live, environ={"LIVE_TRADING_ENABLED": "true"})
    demo_live = load_config(None, environ={"QGTM_MODE": "live"})
    with pytest.raises(ConfigError, match="LIVE_TRADING_ENABLED"):
        check_tradeable(demo_live, environ={"LIVE_TRADING_ENABLED": "true"})


def test_paper_mode_never_reaches_the_live_endpoint(tmp_path: Path, world):
    _served, _data, fake = world
    config = alpaca_config(fake.url, fake.stream_url)
    engine = TradingEngine(config, tmp_path, clock=FakeClock(ny(MONDAY, 9)))
    try:
        assert engine.broker.client._base_url == fake.url
        # without the url override, mode=paper means Alpaca's paper host
        from alpaca.trading.client import TradingClient

        assert "paper-api" in TradingClient(KEY_ID, SECRET, paper=True)._base_url
    finally:
        engine.close()


# ----- the world ----------------------------------------------------------------------
@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[dict, object, FakeAlpaca]]:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    served = bars_until(LAST_STORED)
    data = alpaca_data_fake(served, page_size=4000)
    monkeypatch.setenv("QGTM_ALPACA_DATA_BASE_URL", data.url)
    with FakeAlpaca(set(load_universe().symbols), cash=CASH) as fake:
        yield served, data, fake
    data.close()


async def _until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def _blocked(clock: FakeClock) -> bool:
    """The scheduler sleeps on a moment past the limit: everything before it has run."""
    return (
        clock.waiting_for is not None
        and clock.limit is not None
        and (clock.waiting_for > clock.limit)
    )


def _fill_all_at_close(fake: FakeAlpaca, day) -> int:
    open_orders = [o for o in list(fake.state.orders.values()) if o.status in ("new", "accepted")]
    for order in open_orders:
        fake.fill(order.client_order_id, order.qty, f"{close_of(day, order.symbol):.4f}")
    return len(open_orders)


def _booked_once(data_dir: Path) -> dict[str, int]:
    fills = state_rows(data_dir, "SELECT client_order_id, quantity FROM fills")
    per_order: dict[str, int] = {}
    for cid, qty in fills:
        per_order[cid] = per_order.get(cid, 0) + qty
    return per_order


def _phases(data_dir: Path, parents) -> set[str]:
    rows = state_rows(data_dir, "SELECT parent_id, phase FROM algo_parents")
    return {phase for cid, phase in rows if cid in parents}


async def test_a_trading_day_on_alpaca_paper_end_to_end(tmp_path: Path, world):
    served, data, fake = world
    clock = FakeClock(ny(MONDAY, 9), limit=ny(MONDAY, 15, 29))
    config = alpaca_config(fake.url, fake.stream_url)
    engine = TradingEngine(config, tmp_path, clock=clock)
    # start-up: the bars came from the data fake, known up to Friday's close
    assert engine.panel.dates[-1] == LAST_STORED
    assert len(engine.panel) > 260 and any(r.path == "/v2/stocks/bars" for r in data.requests)
    assert engine.wall_clock and engine.at_end  # nothing to replay
    daemon = TradingDaemon(config, tmp_path, engine, control_socket=False, oms_poll_s=0.02)
    assert {"oms_events", "clock"} <= {spec.name for spec in daemon.specs}
    task = asyncio.create_task(daemon.run())
    try:
        await _until(lambda: _blocked(clock))
        assert fake.orders_received == 0  # nothing before the decision time
        assert daemon.recon.runs >= 1  # 09:30 recon against the (empty) account

        # 15:30: the rebalance decides from Friday's bars and sends the orders
        clock.allow_until(ny(MONDAY, 15, 45))
        await _until(lambda: _blocked(clock) and fake.orders_received > 0)
        placed = dict(state_rows(tmp_path, "SELECT client_order_id, quantity FROM orders"))
        # large orders are VWAP/TWAP parents the OMS slices itself over Tuesday's session
        parents = sliced_parents(engine)
        assert parents and all(start.date() == TUESDAY for start, _ in parents.values())
        orders = {cid: q for cid, q in placed.items() if cid not in parents}
        assert len(orders) == fake.orders_received == fake.posts()
        assert engine.state.get_meta("decided_session") == MONDAY.isoformat()
        assert all(o.time_in_force == "day" for o in fake.state.orders.values())

        # the market fills them before the close; the OMS-events task books the stream
        assert _fill_all_at_close(fake, MONDAY) == len(orders)
        fake.replay_last_event()  # a venue that repeats itself
        await _until(lambda: _booked_once(tmp_path) == orders)
        await _until(lambda: engine.snapshot().positions != ())
        assert daemon.oms_events >= len(orders)

        # 18:00: the data refresh brings Monday's bar; Monday's close is booked. From
        # Tuesday's open a liquid market fills every order on arrival.
        release(served, MONDAY)
        fake.state.auto_fill = {s: f"{close_of(MONDAY, s):.4f}" for s in engine.panel.symbols}
        clock.allow_until(ny(TUESDAY, 9, 31))
        await _until(lambda: _blocked(clock))
        assert engine.panel.dates[-1] == MONDAY
        view = engine.snapshot().data_refresh
        assert view is not None and view.state == "OK" and view.sources == ("alpaca",)
        assert any(line.startswith("alpaca:") for line in view.lines)
        assert [d for d, _ in engine.state.equity_curve(5)][-1] == MONDAY
        # Tuesday 09:30 recon: the book equals the broker
        recon = engine.snapshot().recon
        assert recon is not None and recon.discrepancies == () and recon.broker_positions > 0
        assert daemon.health["oms_events"] is TaskHealth.RUNNING

        # Tuesday: the algo job releases each parent's children on schedule; a liquid
        # market fills them on arrival; by the close every parent is done
        clock.allow_until(ny(TUESDAY, 16, 5))
        await _until(lambda: _blocked(clock) and _phases(tmp_path, parents) == {"DONE"})
        assert daemon.clock.fired["algo"] > len(parents)
        children = state_rows(
            tmp_path, "SELECT parent_id, child_order_id, quantity, status FROM child_slices"
        )
        sent = [c for c in children if c[3] != "PLANNED"]
        assert {p for p, *_ in sent} == set(parents)
        assert {status for *_, status in sent} == {"FILLED"}, sent
        venue_ids = fake.client_ids()
        assert len(venue_ids) == len(set(venue_ids))  # no child ever sent twice
        assert {c for _, c, _, _ in sent} <= set(venue_ids)
        for parent in parents:
            mine = [c for c in sent if c[0] == parent]
            assert len(mine) > 1 and sum(c[2] for c in mine) <= placed[parent]
        fake.state.auto_fill = {}
        await _until(lambda: engine.snapshot().positions != ())
    finally:
        daemon.stop()
        clock.allow_until(None)
        await asyncio.wait_for(task, timeout=30)
    booked = _booked_once(tmp_path)
    assert {c: booked[c] for c in orders} == orders  # the replayed fill was not booked again
    held = {s: q for s, q in engine.book.quantities().items() if q}
    assert held == {s: q for s, (q, _) in fake.state.positions.items() if q}
    assert engine.audit.verify() is None
    events = [r.event for r in engine.audit.search(limit=5000)]
    assert "RECON_COMPLETE" in events and "ORDER_FILLED" in events
    # the dead-man's switch on the wall clock: closing orders reach the venue at once
    before = fake.orders_received
    assert await asyncio.to_thread(daemon._on_stall, 120.0)
    closing = [o for o in fake.state.orders.values() if o.status in ("new", "accepted")]
    assert fake.orders_received == before + len(held) == before + len(closing)
    assert {o.symbol: (1 if o.side == "buy" else -1) * o.qty for o in closing} == {
        s: -q for s, q in held.items()
    }
    engine.close()


async def test_killed_mid_submit_on_the_wall_clock_restarts_with_one_order_each(
    tmp_path: Path, world
):
    _served, _data, fake = world
    fake.hold_next_order(60)  # the venue takes the first order and holds its answer
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(tmp_path), fake.url, fake.stream_url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await asyncio.to_thread(fake.wait_for, lambda: fake.orders_received == 1, 90)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    committed = dict(state_rows(tmp_path, "SELECT client_order_id, quantity FROM orders"))
    assert len(committed) > 1
    assert {s for (s,) in state_rows(tmp_path, "SELECT status FROM orders")} == {"NEW"}
    # VWAP/TWAP parents wait for Tuesday's window; every other order goes out at once
    parents = {cid for (cid,) in state_rows(tmp_path, "SELECT parent_id FROM algo_parents")}
    direct = {cid: q for cid, q in committed.items() if cid not in parents}
    assert parents and direct

    # restart at 15:40 the same day: recover, send what never left, decide nothing again
    clock = FakeClock(ny(MONDAY, 15, 40), limit=ny(MONDAY, 15, 59))
    config = alpaca_config(fake.url, fake.stream_url)
    engine = TradingEngine(config, tmp_path, clock=clock)
    daemon = TradingDaemon(config, tmp_path, engine, control_socket=False, oms_poll_s=0.02)
    task = asyncio.create_task(daemon.run())
    try:
        await _until(lambda: _blocked(clock) and fake.orders_received == len(direct))
        # the parents planned on restart work Tuesday's session, not the past hours of Monday
        windows = sliced_parents(engine)
        assert set(windows) == parents
        assert all(start.date() == TUESDAY for start, _ in windows.values())
        assert fake.posts() == len(direct)  # the in-flight order was looked up, not resent
        assert sorted(o.client_order_id for o in fake.state.orders.values()) == sorted(direct)
        _fill_all_at_close(fake, MONDAY)
        fake.replay_last_event()
        await _until(lambda: _booked_once(tmp_path) == direct)
    finally:
        daemon.stop()
        clock.allow_until(None)
        await asyncio.wait_for(task, timeout=30)
    assert _booked_once(tmp_path) == direct
    assert fake.orders_received == len(direct)
    assert engine.audit.verify() is None
    engine.close()


def test_missing_keys_are_one_clear_line(tmp_path: Path, monkeypatch, capsys):
    from qgtm import cli

    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    monkeypatch.setenv("QGTM_SOURCE", "alpaca")
    import keyring

    monkeypatch.setattr(keyring, "get_password", lambda *a: None)
    assert cli.main(["--data-dir", str(tmp_path), "--daemon", "--sessions", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "qgtm keys set alpaca" in err


def test_demo_default_is_unchanged_by_the_live_path(tmp_path: Path, short_config):
    engine = TradingEngine(short_config, tmp_path)
    try:
        assert not engine.wall_clock and engine.refresh_sources() == ()
        assert engine.step()
        assert engine.snapshot().data_refresh is None
    finally:
        engine.close()


def test_a_config_built_in_code_without_the_alpaca_broker_is_refused():
    config = replace(load_config(None, environ={}), source=Source.ALPACA)
    assert config.execution.broker == "paper"
    with pytest.raises(ConfigError, match=r"execution\.broker"):
        check_tradeable(config, environ={})


async def test_one_decision_per_session_and_none_on_stale_bars(tmp_path: Path, world):
    served, _data, fake = world
    clock = FakeClock(ny(MONDAY, 15, 30))
    config = alpaca_config(fake.url, fake.stream_url)
    engine = TradingEngine(config, tmp_path, clock=clock)
    daemon = TradingDaemon(config, tmp_path, engine, control_socket=False)
    try:
        engine.pause()  # the operator's pause holds the wall clock's decisions
        assert engine.decide_live(ny(MONDAY, 15, 30)) == -1 and fake.orders_received == 0
        assert any("paused by the operator" in a for a in engine.snapshot().alerts)
        engine.resume()
        placed = engine.decide_live(ny(MONDAY, 15, 30))
        sliced = len(sliced_parents(engine))  # VWAP/TWAP parents wait for their window
        assert placed > 0 and fake.orders_received == placed - sliced
        assert engine.decide_live(ny(MONDAY, 15, 35)) == -1  # already decided today
        assert fake.orders_received == placed - sliced
        _fill_all_at_close(fake, MONDAY)
        await _until(lambda: engine.process_broker_updates() == 0 and _booked_once(tmp_path))
        # Tuesday without Monday's bar: refused and alerted, nothing sent
        clock.advance_to(ny(TUESDAY, 15, 30))
        assert engine.decide_live(ny(TUESDAY, 15, 30)) == -1
        assert any("2026-03-02 is missing" in a for a in engine.snapshot().alerts)
        assert fake.orders_received == placed - sliced
        # the daemon's rebalance job fetches the missing bar first, then decides
        release(served, MONDAY)
        await daemon._job_rebalance(ny(TUESDAY, 15, 30))
        assert engine.panel.dates[-1] == MONDAY
        assert engine.state.get_meta("decided_session") == TUESDAY.isoformat()
        assert [d for d, _ in engine.state.equity_curve(3)][-1] == MONDAY  # close booked
        # after the close nothing is decided
        clock.advance_to(ny(date(2026, 3, 4), 16, 5))
        assert engine.decide_live(ny(date(2026, 3, 4), 16, 5)) == -1
    finally:
        engine.close()


def test_the_terminal_alone_does_not_trade_on_the_wall_clock(tmp_path: Path, monkeypatch, capsys):
    from qgtm import cli

    monkeypatch.setenv("QGTM_SOURCE", "alpaca")
    assert cli.main(["--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "qgtm --daemon" in err


def test_refresh_sources_are_checked_when_the_config_loads():
    config = load_config(None, environ={"QGTM_LIVE__REFRESH_SOURCES": "alpaca,fred,cftc"})
    assert config.live.refresh_sources == ("alpaca", "fred", "cftc")
    with pytest.raises(ConfigError, match="unknown bloomberg"):
        load_config(None, environ={"QGTM_LIVE__REFRESH_SOURCES": "alpaca,bloomberg"})


def test_a_new_live_book_warns_when_the_account_is_not_initial_cash(tmp_path: Path, world):
    _served, _data, fake = world
    config = alpaca_config(fake.url, fake.stream_url)
    config = replace(config, engine=replace(config.engine, initial_cash="250000"))
    engine = TradingEngine(config, tmp_path, clock=FakeClock(ny(MONDAY, 9)))
    try:
        alerts = engine.snapshot().alerts
        assert any("differs from engine.initial_cash 250,000.00" in a for a in alerts)
    finally:
        engine.close()
    matching = TradingEngine(alpaca_config(fake.url, fake.stream_url), tmp_path / "b")
    try:
        assert not any("initial_cash" in a for a in matching.snapshot().alerts)
    finally:
        matching.close()


def test_the_live_panel_uses_only_bars_known_by_now_and_bridges_a_missing_bar(tmp_path: Path):
    from datetime import UTC, datetime

    import polars as pl

    from qgtm.engine.data.providers.alpaca import bar_knowledge_time
    from qgtm.engine.data.providers.base import BAR_SCHEMA
    from qgtm.engine.data.store import MarketStore

    def rows(symbol: str, days: list[int], closes: list[float]) -> list[tuple]:
        out = []
        for day, close in zip(days, closes, strict=True):
            ts = datetime(2024, 1, day, 5, 0, tzinfo=UTC)  # midnight New York (EST)
            out.append(
                (
                    symbol,
                    "1Day",
                    ts,
                    close,
                    close,
                    close,
                    close,
                    1e6,
                    bar_knowledge_time(ts, "1Day"),
                )
            )
        return out

    # USO starts a day later; GLD has no bar on the 4th; both have a bar on the 5th
    data = rows("GLD", [2, 3, 5], [100.0, 101.0, 103.0]) + rows("USO", [3, 4, 5], [70.0, 71, 72])
    store = MarketStore(tmp_path)
    store.upsert_provider_bars(pl.DataFrame(data, schema=BAR_SCHEMA, orient="row"))
    panel = store.load_provider_panel(("GLD", "USO"), ny(date(2024, 1, 5), 15, 30))
    # the 5th's bars are not known at 15:30 on the 5th; the panel starts when both trade
    assert panel.dates == (date(2024, 1, 3), date(2024, 1, 4))
    assert panel.close[:, 0].tolist() == [101.0, 101.0]  # GLD's missing 4th: flat
    assert panel.volume[1, 0] == 0.0 and panel.open[1, 0] == 101.0
    after_close = store.load_provider_panel(("GLD", "USO"), ny(date(2024, 1, 5), 16, 0))
    assert after_close.dates[-1] == date(2024, 1, 5) and after_close.close[-1, 1] == 72.0
    store.close()


async def test_a_restart_after_the_close_books_the_missed_close(tmp_path: Path, world):
    served, _data, fake = world
    config = alpaca_config(fake.url, fake.stream_url)
    first = TradingEngine(config, tmp_path, clock=FakeClock(ny(MONDAY, 15, 30)))
    try:
        placed = first.decide_live(ny(MONDAY, 15, 30)) - len(sliced_parents(first))
        _fill_all_at_close(fake, MONDAY)
        await _until(
            lambda: first.process_broker_updates() >= 0 and len(_booked_once(tmp_path)) == placed
        )
    finally:
        first.close()  # down before the 18:00 refresh
    release(served, MONDAY)
    again = TradingEngine(config, tmp_path, clock=FakeClock(ny(MONDAY, 19)))
    try:
        assert again.panel.dates[-1] == MONDAY
        assert [d for d, _ in again.state.equity_curve(3)] == [MONDAY]  # booked at start-up
        held = {s: q for s, q in again.book.quantities().items() if q}
        assert held == {s: q for s, (q, _) in fake.state.positions.items() if q}
    finally:
        again.close()


async def test_recon_asks_the_venue_about_yesterdays_orders_the_stream_never_closed(
    tmp_path: Path, world
):
    _served, _data, fake = world
    clock = FakeClock(ny(MONDAY, 15, 30))
    config = alpaca_config(fake.url, fake.stream_url)
    engine = TradingEngine(config, tmp_path, clock=clock)
    daemon = TradingDaemon(config, tmp_path, engine, control_socket=False)
    try:
        placed = engine.decide_live(ny(MONDAY, 15, 30))
        await daemon._job_recon(ny(MONDAY, 15, 45))
        assert daemon.recon.runs == 0  # today's orders are working: recon waits
        with fake.state.lock:  # the venue expires them at the close; the stream says nothing
            for order in fake.state.orders.values():
                order.status = "expired"
        clock.advance_to(ny(TUESDAY, 9, 30))
        await daemon._job_recon(ny(TUESDAY, 9, 30))
        statuses = {
            s
            for (s,) in state_rows(
                tmp_path,  # sliced parents work today's window: not venue orders
                "SELECT status FROM orders WHERE client_order_id NOT IN "
                "(SELECT parent_id FROM algo_parents)",
            )
        }
        assert statuses == {"EXPIRED"} and placed > 0
        assert daemon.recon.runs == 1 and engine.snapshot().recon.discrepancies == ()
    finally:
        engine.close()


async def test_no_new_stops_growing_algo_parents_and_flatten_stops_them_all(tmp_path: Path, world):
    """Under NO_NEW no child of a parent that would grow a position goes out; a
    parent that reduces one keeps working; FLATTEN stops every schedule."""
    _served, _data, fake = world
    clock = FakeClock(ny(MONDAY, 15, 30))
    engine = TradingEngine(alpaca_config(fake.url, fake.stream_url), tmp_path, clock=clock)
    try:
        engine.decide_live(ny(MONDAY, 15, 30))
        parents = sliced_parents(engine)
        assert len(parents) >= 2  # all buys into an empty book: each would grow a position
        # pretend the book holds the opposite of the first parent: that parent now reduces
        reducing = sorted(parents)[0]
        ((symbol, side),) = state_rows(
            tmp_path, f"SELECT symbol, side FROM orders WHERE client_order_id = '{reducing}'"
        )
        opposite = -(10**6) if side == "BUY" else 10**6
        engine.book.holdings[symbol] = Holding(opposite, Decimal(1))
        sent_before = fake.orders_received
        with engine.state.transaction():
            engine.risk.trip(KillTier.NO_NEW, ny(TUESDAY, 9, 30), "test: operator")
        clock.advance_to(ny(TUESDAY, 9, 30))
        engine.work_algos(ny(TUESDAY, 9, 30))
        engine.work_algos(ny(TUESDAY, 9, 31))  # the stopped windows close
        growing = set(parents) - {reducing}
        assert _phases(tmp_path, growing) == {"DONE"}
        assert _phases(tmp_path, {reducing}) == {"WORKING"}
        sent = fake.client_ids()[sent_before:]
        assert sent and {cid.rsplit("-", 1)[0] for cid in sent} == {reducing.rsplit("-", 1)[0]}
        # FLATTEN (the watchdog, an operator) stops every schedule that is left
        with engine.state.transaction():
            engine.risk.trip(KillTier.FLATTEN, ny(TUESDAY, 9, 32), "test: flatten")
        engine.work_algos(ny(TUESDAY, 9, 33))
        assert _phases(tmp_path, parents) == {"DONE"}
    finally:
        engine.close()
