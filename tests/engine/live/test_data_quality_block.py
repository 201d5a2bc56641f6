"""A critical data-quality failure keeps the engine from trading the affected symbol."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from qgtm.core.config import Config
from qgtm.core.quality import QualityFailure, Severity
from qgtm.engine.data.quality import store_failures
from qgtm.engine.live.engine import TradingEngine


def _first_session_orders(config: Config, data_dir: Path, block: str | None) -> set[str]:
    engine = TradingEngine(config, data_dir)
    try:
        day = engine.panel.dates[engine.next_index]
        if block:
            failure = QualityFailure(
                "bars_1Day", block, "split_jump", Severity.CRITICAL, day, "moved -50.0%"
            )
            store_failures(engine.market.connection, "bars_1Day", [failure])
        assert engine.step()
        return {o.symbol for o in engine.snapshot().recent_orders}
    finally:
        engine.close()


def test_blocked_symbol_gets_no_order_and_the_block_is_audited(tmp_path, short_config):
    unblocked = _first_session_orders(short_config, tmp_path / "a", None)
    assert "GLD" in unblocked  # the strategy does trade GLD on this session
    blocked = _first_session_orders(short_config, tmp_path / "b", "GLD")
    assert blocked == unblocked - {"GLD"}
    conn = sqlite3.connect(tmp_path / "b" / "state.sqlite")
    events = conn.execute("SELECT payload FROM audit WHERE event = 'DATA_QUALITY_BLOCK'").fetchall()
    conn.close()
    assert len(events) == 1 and "GLD" in events[0][0] and "split_jump" in events[0][0]


def test_data_commands_report_status_and_failures(tmp_path, short_config):
    engine = TradingEngine(short_config, tmp_path)
    try:
        assert engine.call("data.status") == []
        day = engine.panel.dates[engine.next_index]
        failure = QualityFailure("bars_1Day", "SLV", "null", Severity.CRITICAL, day, "no close")
        store_failures(engine.market.connection, "bars_1Day", [failure])
        assert engine.call("data.failures") == [failure]
    finally:
        engine.close()
