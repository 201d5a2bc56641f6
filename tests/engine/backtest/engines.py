"""A paused demo engine whose replay has reached 2010, so research has two years to use."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

from qgtm.core.config import Config, EngineConfig
from qgtm.engine.live.engine import TradingEngine
from tests.tui.conftest import SHORT_DEMO


def research_engine(data_dir: Path) -> TradingEngine:
    """Short demo market (2008-01..2010-06), replay starting 2010-01-04, clock paused."""
    engine_config = EngineConfig(speed=1 / 30, start=date(2010, 1, 4))
    engine = TradingEngine(replace(Config(), demo=SHORT_DEMO, engine=engine_config), data_dir)
    engine.pause()
    return engine
