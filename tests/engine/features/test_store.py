from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import duckdb
import numpy as np
import pytest

from qgtm.engine.data.store import PricePanel
from qgtm.engine.features import store as feature_store
from qgtm.engine.features.store import FeatureStore, UnknownFeatureError


def _panel(closes: np.ndarray, symbols=("GLD", "SLV")) -> PricePanel:
    dates = tuple(date(2020, 1, 1) + timedelta(days=i) for i in range(len(closes)))
    return PricePanel(dates, symbols, closes, closes, closes, closes, np.ones_like(closes))


@pytest.fixture
def store(tmp_path):
    con = duckdb.connect(str(tmp_path / "market.duckdb"))
    yield FeatureStore(con)
    con.close()


def _prices() -> np.ndarray:
    rng = np.random.default_rng(0)
    return 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (120, 2)), axis=0))


def test_second_request_with_the_same_key_is_a_cache_hit(store):
    panel = _panel(_prices())
    first = store.get("realised_vol", panel, window=21)
    second = store.get("realised_vol", panel, window=21)
    assert (first.cache_hit, second.cache_hit) == (False, True)
    np.testing.assert_array_equal(first.values, second.values)


def test_cached_values_are_the_transform_output(store):
    closes = _prices()
    values = store.get("realised_vol", _panel(closes), window=21).values
    expected = np.diff(np.log(closes[-22:]), axis=0).std(axis=0, ddof=1) * np.sqrt(252)
    np.testing.assert_allclose(values[-1], expected)


def test_changed_data_params_or_version_recompute(store, monkeypatch):
    closes = _prices()
    store.get("realised_vol", _panel(closes), window=21)
    altered = closes.copy()
    altered[-1, 0] *= 1.05
    assert not store.get("realised_vol", _panel(altered), window=21).cache_hit
    assert not store.get("realised_vol", _panel(altered), window=63).cache_hit
    bumped = replace(feature_store.FEATURES["realised_vol"], version=2)
    monkeypatch.setitem(feature_store.FEATURES, "realised_vol", bumped)
    assert not store.get("realised_vol", _panel(altered), window=63).cache_hit
    assert store.get("realised_vol", _panel(altered), window=63).cache_hit


def test_a_recompute_replaces_the_stale_entry(store):
    closes = _prices()
    store.get("drawdown", _panel(closes))
    store.get("drawdown", _panel(closes * 1.01))
    assert len([k for k in store.cached_keys() if k[0] == "drawdown"]) == 1


def test_cache_survives_reopening_the_database(tmp_path):
    panel = _panel(_prices())
    first = FeatureStore.open(tmp_path)
    first.get("zscore", panel, window=20)
    first.close()
    again = FeatureStore.open(tmp_path)
    assert again.get("zscore", panel, window=20).cache_hit
    again.close()


def test_every_registered_feature_computes_on_a_small_panel(store):
    panel = _panel(_prices(), symbols=("USO", "BNO"))
    for name in feature_store.FEATURES:
        params = {"a": "USO", "b": "BNO"} if name == "rolling_corr" else {}
        values = store.get(name, panel, **params).values
        assert len(values) == len(panel)
        assert np.isfinite(values[-1]).all()


def test_unknown_feature_and_parameter_are_refused(store):
    panel = _panel(_prices())
    with pytest.raises(UnknownFeatureError, match="unknown feature 'nope'"):
        store.get("nope", panel)
    with pytest.raises(ValueError, match="unknown parameter"):
        store.get("drawdown", panel, window=3)


def test_every_feature_a_strategy_declares_exists():
    from qgtm.engine.features.auxiliary import demo_context
    from qgtm.engine.strategies.registry import STRATEGIES

    known = set(feature_store.FEATURES) | set(demo_context().series)
    for cls in STRATEGIES.values():
        assert set(cls.features) <= known, cls.name
