"""The engine end to end on a short demo market: orders, fills, restart, crash, kill tiers."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from qgtm.core.config import Config
from qgtm.core.enums import KillTier
from qgtm.core.types import RiskLimits
from qgtm.engine.live.engine import DEFAULT_WARMUP_SESSIONS, DEMO_HISTORY_SESSIONS, TradingEngine


def _book(data_dir: Path) -> dict[str, list]:
    """Everything that must be identical between two runs (wall-clock columns excluded)."""
    conn = sqlite3.connect(data_dir / "state.sqlite")
    try:
        return {
            "orders": conn.execute(
                "SELECT client_order_id, symbol, side, quantity, status, avg_fill_price, filled_on "
                "FROM orders ORDER BY client_order_id"
            ).fetchall(),
            "fills": conn.execute("SELECT * FROM fills ORDER BY fill_id").fetchall(),
            "positions": conn.execute("SELECT * FROM positions ORDER BY symbol").fetchall(),
            "equity": conn.execute("SELECT * FROM equity ORDER BY session").fetchall(),
            "audit": conn.execute(
                "SELECT seq, sim_time, event, actor, payload FROM audit ORDER BY seq"
            ).fetchall(),
        }
    finally:
        conn.close()


def _run(config: Config, data_dir: Path, sessions: int) -> None:
    engine = TradingEngine(config, data_dir)
    try:
        for _ in range(sessions):
            assert engine.step()
    finally:
        engine.close()


def test_a_session_trades_and_moves_equity(tmp_path: Path, short_config: Config):
    engine = TradingEngine(short_config, tmp_path)
    start_equity = engine.snapshot().equity
    for _ in range(5):
        engine.step()
    snap = engine.snapshot()
    engine.close()
    assert snap.recent_orders and snap.positions
    assert snap.equity != start_equity
    assert snap.sessions_done == 5


def test_stop_and_restart_gives_the_same_book_as_one_uninterrupted_run(
    tmp_path: Path, short_config: Config
):
    _run(short_config, tmp_path / "whole", 40)
    _run(short_config, tmp_path / "split", 25)
    _run(short_config, tmp_path / "split", 15)
    whole, split = _book(tmp_path / "whole"), _book(tmp_path / "split")
    assert len(whole["fills"]) > 0
    assert whole == split


def test_a_failing_session_rolls_back_and_is_redone_once(
    tmp_path: Path, short_config: Config, monkeypatch: pytest.MonkeyPatch
):
    _run(short_config, tmp_path / "reference", 12)
    engine = TradingEngine(short_config, tmp_path / "crashy")
    for _ in range(10):
        engine.step()
    original_close = engine._close

    def crash(*args: object) -> None:
        raise OSError("disk vanished mid-session")

    monkeypatch.setattr(engine, "_close", crash)
    with pytest.raises(OSError):
        engine.step()
    monkeypatch.setattr(engine, "_close", original_close)
    engine.step()
    engine.step()
    engine.close()
    assert _book(tmp_path / "crashy") == _book(tmp_path / "reference")


def test_drawdown_beyond_the_limit_flattens_and_logs_completion(
    tmp_path: Path, short_config: Config
):
    tight = replace(short_config, risk=RiskLimits(max_drawdown_pct=0.005))
    engine = TradingEngine(tight, tmp_path)
    for _ in range(60):
        engine.step()
    snap = engine.snapshot()
    engine.close()
    events = [row[2] for row in _book(tmp_path)["audit"]]
    assert snap.kill_tier is KillTier.FLATTEN
    assert snap.positions == ()
    assert "TIER_CHANGE" in events
    assert events.index("EMERGENCY_FLATTEN_COMPLETE") > events.index("TIER_CHANGE")


def test_audit_chain_of_a_real_run_verifies(tmp_path: Path, short_config: Config):
    engine = TradingEngine(short_config, tmp_path)
    for _ in range(10):
        engine.step()
    assert engine.audit.verify() is None
    engine.close()


async def test_replay_clock_runs_until_asked_to_stop(tmp_path: Path, short_config: Config):
    engine = TradingEngine(short_config, tmp_path)
    done = await engine.run(max_sessions=7)
    assert done == 7
    assert engine.snapshot().sessions_done == 7
    engine.close()


def test_declared_commands_run_between_steps_and_unknown_ones_are_named(
    tmp_path: Path, short_config: Config
):
    from qgtm.core.protocol import UnknownCommandError

    engine = TradingEngine(short_config, tmp_path)
    status = engine.call("publish.status")
    assert (status.pending, status.sent) == (0, 0)
    with pytest.raises(UnknownCommandError, match=r"unknown engine command 'nope'.*risk\.status"):
        engine.call("nope")
    with pytest.raises(UnknownCommandError, match="not an engine command of the protocol"):
        engine.bind("book.cash", lambda: str(engine.book.cash))  # undeclared: refused
    with pytest.raises(ValueError, match="already bound"):
        engine.bind("risk.status", engine.risk_status)
    with pytest.raises(ValueError, match=r"market\.bars"):  # arguments checked by the protocol
        engine.call("market.bars", symbol="GLD", lookback="many")
    engine.close()


def test_a_new_book_on_a_long_demo_market_replays_after_five_years_of_history(
    tmp_path: Path, short_config: Config
) -> None:
    """Research sees only the sessions before the replay clock: on a market of ten
    years or more a fresh book leaves it five years of them (the default demo replays
    from 2013); a shorter market keeps the one-year warm-up."""
    long_demo = replace(short_config.demo, start=date(2008, 1, 2), end=date(2018, 6, 29))
    engine = TradingEngine(replace(short_config, demo=long_demo), tmp_path / "long")
    try:
        assert len(engine.panel) >= 2 * DEMO_HISTORY_SESSIONS
        assert engine.next_index == DEMO_HISTORY_SESSIONS
        assert engine.panel.dates[engine.next_index].year == 2013
        processed = engine.call("backtest.market")["sessions"]
        assert processed == DEMO_HISTORY_SESSIONS
    finally:
        engine.close()
    short = TradingEngine(short_config, tmp_path / "short")
    try:
        assert short.next_index == DEFAULT_WARMUP_SESSIONS
    finally:
        short.close()
