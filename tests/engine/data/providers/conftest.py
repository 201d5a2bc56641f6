"""Provider test fixtures: keys in the environment, base URLs pointing at loopback fakes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qgtm.engine.data.store import MarketStore


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test keys for every source (the env path the CI uses)."""
    monkeypatch.setenv("QGTM_FRED_API_KEY", "test-fred-key")
    monkeypatch.setenv("QGTM_EIA_API_KEY", "test-eia-key")
    monkeypatch.setenv("APCA_API_KEY_ID", "test-alpaca-key")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "test-alpaca-secret")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MarketStore]:
    """An empty market store."""
    market = MarketStore(tmp_path)
    yield market
    market.close()
