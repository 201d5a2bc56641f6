"""Terminal test fixtures: the real engine on a short demo market, driven in-process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from qgtm.core.config import Config, DemoConfig, EngineConfig
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.live.inprocess import InProcessClient

SHORT_DEMO = DemoConfig(seed=11, start=date(2008, 1, 2), end=date(2010, 6, 30))


class RecordingClient(InProcessClient):
    """The real in-process client, noting the lifecycle calls the app makes."""

    def __init__(self, engine: TradingEngine) -> None:
        super().__init__(engine)
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")
        await super().start()

    async def stop(self) -> None:
        self.calls.append("stop")
        await super().stop()


def make_engine(data_dir: Path, running: bool = True) -> TradingEngine:
    """A demo engine whose clock is slow enough that only the test moves it."""
    config = replace(Config(), demo=SHORT_DEMO, engine=EngineConfig(speed=1 / 30))
    engine = TradingEngine(config, data_dir)
    if not running:
        engine.pause()
    return engine


@pytest.fixture
def client(tmp_path: Path) -> Iterator[RecordingClient]:
    """A running engine (one session every 30 s) that tests advance explicitly."""
    engine = make_engine(tmp_path)
    yield RecordingClient(engine)
    engine.close()


@pytest.fixture(autouse=True)
def private_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the remembered theme (user config dir) of every test inside its tmp dir."""
    config_home = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    return config_home


@pytest.fixture(autouse=True)
def no_heap_freeze(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps under test do not gc.freeze the test process's heap (tested on its own)."""
    monkeypatch.setattr("qgtm.tui.latency.FREEZE_AT_START", False)
