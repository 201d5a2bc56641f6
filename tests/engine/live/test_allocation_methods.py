"""Every configured allocation method trades the demo market inside the risk limits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from qgtm.core.config import Config, PortfolioConfig
from qgtm.engine.live.engine import TradingEngine


@pytest.mark.parametrize("method", ["equal", "erc", "hrp"])
def test_engine_trades_with_each_allocation_method(tmp_path: Path, short_config: Config, method):
    config = replace(short_config, portfolio=PortfolioConfig(method=method))
    engine = TradingEngine(config, tmp_path)
    for _ in range(25):
        engine.step()
    snapshot = engine.snapshot()
    engine.close()
    assert snapshot.positions  # the allocator produced a book
    assert snapshot.gross_leverage <= config.risk.max_gross_leverage
    assert max(abs(p.weight) for p in snapshot.positions) <= config.risk.max_position_weight + 0.01
