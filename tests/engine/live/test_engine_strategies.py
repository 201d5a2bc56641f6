"""The engine with several strategies: regime filter, recorded signals, commands, restart."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from qgtm.core.config import Config, EngineConfig
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.strategies.registry import STRATEGIES, UnknownStrategyError

STRATEGY_SET = ("tsmom", "bollinger_mr", "sma_cross")


def _config(short_config: Config) -> Config:
    engine = EngineConfig(speed=0.0, strategies=STRATEGY_SET, start=date(2009, 6, 1))
    return replace(short_config, engine=engine)


def test_each_session_runs_only_the_strategies_of_its_regime(short_config, tmp_path):
    engine = TradingEngine(_config(short_config), tmp_path)
    try:
        seen_regimes = set()
        for _ in range(25):
            engine.step()
            regime = engine.regime
            assert regime in ("trending", "mean_reverting", "crisis")
            seen_regimes.add(regime)
            day = engine.current_session.isoformat()
            statuses = {s.strategy: s.status for s in engine.last_aggregation.statuses}
            recorded = {
                row[0]
                for row in engine.state.conn.execute(
                    "SELECT DISTINCT strategy FROM signals WHERE as_of = ?", (day,)
                )
            }
            for strategy in engine.strategies:
                expected = "active" if strategy.trades_in(regime) else "filtered"
                assert statuses[strategy.name] == expected
                assert (strategy.name in recorded) == (expected == "active")
            assert engine.snapshot().regime == regime
    finally:
        engine.close()


def test_regime_survives_a_restart(short_config, tmp_path):
    engine = TradingEngine(_config(short_config), tmp_path)
    engine.step()
    regime = engine.regime
    engine.close()
    again = TradingEngine(_config(short_config), tmp_path)
    try:
        assert again.snapshot().regime == regime is not None
    finally:
        again.close()


def test_strategy_commands_list_the_library_and_recorded_signals(short_config, tmp_path):
    engine = TradingEngine(_config(short_config), tmp_path)
    try:
        engine.step()
        library = engine.call("strategies.list")
        assert [row.name for row in library] == sorted(STRATEGIES)
        by_name = {row.name: row for row in library}
        assert by_name["tsmom"].status == "active"
        assert by_name["rsi2"].status == "not configured"
        assert by_name["sma_cross"].regimes == ("trending", "crisis")
        signals = engine.call("strategies.signals", strategy="tsmom", limit=5)
        assert len(signals) == 5
        assert signals[0].as_of == engine.current_session
        with pytest.raises(UnknownStrategyError):
            engine.call("strategies.signals", strategy="nope")
    finally:
        engine.close()
