"""A small demo market shared by the backtest tests (built once per session)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from qgtm.core.config import DemoConfig
from qgtm.core.universe import load_universe
from qgtm.engine.data.store import MarketStore, PricePanel

BACKTEST_DEMO = DemoConfig(seed=11, start=date(2008, 1, 2), end=date(2010, 6, 30))


@pytest.fixture(scope="session")
def demo_panel(tmp_path_factory: pytest.TempPathFactory) -> PricePanel:
    """2.5 years of the seeded demo market for the whole universe."""
    data_dir: Path = tmp_path_factory.mktemp("bt-market")
    universe = load_universe()
    store = MarketStore(data_dir)
    store.ensure_demo(universe, BACKTEST_DEMO)
    panel = store.load_panel(universe.symbols)
    store.close()
    return panel
