"""Same engine code: the event-driven backtest's book equals the live TradingEngine's.

The live engine replays the demo market session by session (SQLite state, audit, OMS,
paper broker, RiskManager); the backtest runs over the same bars with the settings
`settings_from_config` derives from the same Config. Per session the holdings must be
identical and the equity equal to the cent (both are Decimal books; compared exactly).

The learning loop is disabled: it retrains and promotes strategy parameters while the
live engine runs, which a backtest of one fixed parameter set cannot reproduce by design.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from qgtm.core.config import Config, EngineConfig, LearnConfig, PortfolioConfig
from qgtm.core.types import RiskLimits
from qgtm.engine.backtest.api import settings_from_config
from qgtm.engine.backtest.event_driven import run_event_driven
from qgtm.engine.backtest.vectorised import run_vectorised
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.strategies.registry import create
from tests.engine.backtest.conftest import BACKTEST_DEMO

SESSIONS = 70


def _live_book(config: Config, data_dir: Path) -> tuple[TradingEngine, list, list, list, dict]:
    engine = TradingEngine(config, data_dir)
    engine.pause()
    days, holdings, equity = [], [], []
    try:
        for _ in range(SESSIONS):
            assert engine.step()
            day = engine.current_session
            marks = engine._marks(engine.next_index - 1)
            days.append(day)
            holdings.append(engine.book.quantities())
            equity.append(engine.book.equity(marks))
        conn = engine.state.conn
        counts = {
            "orders": conn.execute("SELECT count(*) FROM orders").fetchone()[0],
            "algo": conn.execute(
                "SELECT count(*) FROM orders WHERE order_type != 'market'"
            ).fetchone()[0],
            "kelly": conn.execute(
                "SELECT count(*) FROM risk_events WHERE detail LIKE '%Kelly%'"
            ).fetchone()[0],
            "cuts": conn.execute(
                "SELECT count(*) FROM risk_events WHERE kind = 'ORDER_CUT'"
            ).fetchone()[0],
        }
    finally:
        engine.close()
    return engine, days, holdings, equity, counts


@pytest.mark.parametrize(
    ("strategies", "method", "limits"),
    [
        (("tsmom",), "inverse_vol", RiskLimits()),
        (
            ("tsmom", "tsmom_3m", "xsmom_6m"),
            "erc",
            RiskLimits(kelly_min_obs=20, vol_target=0.08, max_sector_weight=0.15),
        ),
    ],
    ids=["tsmom-inverse-vol", "three-strategies-erc-regime-filter-kelly"],
)
def test_event_driven_backtest_equals_the_live_engine_book(
    tmp_path: Path, strategies: tuple[str, ...], method: str, limits: RiskLimits
) -> None:
    start = date(2009, 3, 2)
    config = replace(
        Config(),
        demo=BACKTEST_DEMO,
        engine=EngineConfig(speed=0, start=start, strategies=strategies),
        learn=LearnConfig(enabled=False),
        portfolio=PortfolioConfig(method=method),
        risk=limits,
    )
    engine, days, holdings, equity, counts = _live_book(config, tmp_path)
    # the window exercises real trading and algo orders (VWAP/TWAP) ...
    assert counts["orders"] > 20 and counts["algo"] > 0
    if limits.kelly_min_obs < SESSIONS:  # ... and risk cuts, the Kelly cap among them
        assert counts["cuts"] > 0 and counts["kelly"] > 0
    settings = settings_from_config(config, start, days[-1])
    names = [create(n) for n in strategies]
    result = run_event_driven(engine.panel, names, settings)
    assert result.dates == tuple(days)
    symbols = result.symbols
    live_positions = np.array([[h.get(s, 0) for s in symbols] for h in holdings])
    np.testing.assert_array_equal(result.positions, live_positions)
    assert [Decimal(str(x)) for x in result.equity] == [Decimal(str(float(e))) for e in equity]
    # the vectorised runner takes the same decisions, so it matches the live book too
    vector = run_vectorised(engine.panel, names, settings)
    np.testing.assert_array_equal(vector.positions, live_positions)
    np.testing.assert_allclose(vector.equity, result.equity, rtol=1e-9, atol=0)
