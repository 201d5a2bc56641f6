"""Shared fixtures: small, explicit worlds."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from qgtm.core.config import Config, DemoConfig, EngineConfig

SHORT_DEMO = DemoConfig(seed=11, start=date(2008, 1, 2), end=date(2010, 6, 30))


@pytest.fixture
def short_config() -> Config:
    """Paper/demo config over a 2.5-year demo market, max replay speed."""
    return replace(Config(), demo=SHORT_DEMO, engine=EngineConfig(speed=0.0))


@pytest.fixture(autouse=True)
def _regime_labels_in_memory_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands under test switch on the on-disk regime label cache for their data dir
    (a process-wide setting); each test starts with memory only, so no test reads
    labels another test stored."""
    from qgtm.engine.backtest import decision

    monkeypatch.setattr(decision, "_REGIME_DIR", [])
