"""Retrain candidates: seeded draws inside each parameter's declared range."""

from __future__ import annotations

from qgtm.engine.learn.retrain import candidate_params
from qgtm.engine.strategies.ml import RidgeForecast


def test_whole_parameters_are_drawn_whole_and_real_ones_stay_real() -> None:
    """ml_ridge's windows (int defaults) come out whole; its penalty (default 10.0, range
    0..1000) is a real number and must not be rounded just because 10.0 looks whole.
    Every draw builds a strategy (no range or whole-number refusal)."""
    current = dict(RidgeForecast().params)
    candidates = candidate_params(RidgeForecast, current, "ml_ridge|2024-01-02", 40)
    assert candidates[0] == current and len(candidates) == 41
    specs = {p.name: p for p in RidgeForecast.parameters}
    for params in candidates[1:]:
        RidgeForecast(**params)
        for name, value in params.items():
            assert specs[name].low <= value <= specs[name].high
            if specs[name].whole:
                assert float(value).is_integer()
    penalties = [c["penalty"] for c in candidates[1:]]
    assert sum(not float(v).is_integer() for v in penalties) > 30
    assert candidate_params(RidgeForecast, current, "ml_ridge|2024-01-02", 40) == candidates
