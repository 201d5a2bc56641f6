"""Weighting schemes: hand-computed cases and HRP against PyPortfolioOpt's HRPOpt."""

from __future__ import annotations

import numpy as np
import pytest

from qgtm.core.universe import load_universe
from qgtm.engine.portfolio.weighting import (
    equal_risk_contribution,
    equal_weights,
    hierarchical_risk_parity,
    inverse_vol,
    quasi_diagonal_order,
    risk_contributions,
)


def _cov(vols: list[float], corr: np.ndarray) -> np.ndarray:
    v = np.array(vols)
    return corr * np.outer(v, v)


def _returns(seed: int, n_assets: int, n_days: int = 500) -> np.ndarray:
    """Correlated daily returns with clustered structure (three blocks)."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(0, 0.01, size=(n_days, 3))
    loadings = np.zeros((n_assets, 3))
    for i in range(n_assets):
        loadings[i, i % 3] = rng.uniform(0.5, 1.5)
    noise = rng.normal(0, 0.01, size=(n_days, n_assets)) * rng.uniform(0.5, 2.0, n_assets)
    return factors @ loadings.T + noise


def test_equal_weights_are_one_over_n():
    assert np.allclose(equal_weights(np.eye(4)), 0.25)


def test_inverse_vol_weights_by_hand():
    cov = _cov([0.1, 0.2], np.eye(2))
    # 1/0.1 = 10, 1/0.2 = 5 -> 10/15, 5/15
    assert np.allclose(inverse_vol(cov), [2 / 3, 1 / 3])


def test_two_asset_erc_is_inverse_vol_whatever_the_correlation():
    # For two assets, w1 sigma1 = w2 sigma2 equalises contributions for any rho.
    for rho in (-0.5, 0.0, 0.7):
        cov = _cov([0.1, 0.3], np.array([[1, rho], [rho, 1]]))
        assert np.allclose(equal_risk_contribution(cov), [0.75, 0.25], atol=1e-8)


def test_erc_equalises_risk_contributions_with_three_assets():
    corr = np.array([[1, 0.8, 0.1], [0.8, 1, 0.2], [0.1, 0.2, 1]])
    cov = _cov([0.15, 0.25, 0.1], corr)
    weights = equal_risk_contribution(cov)
    assert weights.sum() == pytest.approx(1.0)
    assert np.allclose(risk_contributions(weights, cov), 1 / 3, atol=1e-7)


def test_two_asset_hrp_is_inverse_variance_by_hand():
    # One bisection: alpha = 1 - v1/(v1+v2) = v2/(v1+v2), i.e. w proportional to 1/v.
    cov = _cov([0.1, 0.2], np.array([[1, 0.3], [0.3, 1]]))
    assert np.allclose(hierarchical_risk_parity(cov), [0.8, 0.2])


def test_quasi_diagonal_order_puts_correlated_assets_next_to_each_other():
    corr = np.array(
        [[1, 0.1, 0.9, 0.1], [0.1, 1, 0.1, 0.95], [0.9, 0.1, 1, 0.1], [0.1, 0.95, 0.1, 1]]
    )
    order = quasi_diagonal_order(_cov([0.1] * 4, corr))
    position = {asset: i for i, asset in enumerate(order)}
    assert abs(position[0] - position[2]) == 1
    assert abs(position[1] - position[3]) == 1


@pytest.mark.parametrize("seed,n_assets", [(1, 5), (2, 9), (3, 18)])
def test_hrp_matches_pyportfolioopt_to_1e_8(seed: int, n_assets: int):
    pd = pytest.importorskip("pandas")
    hierarchical = pytest.importorskip(
        "pypfopt.hierarchical_portfolio",
        reason="PyPortfolioOpt (the test-ref extra) is not installed: pip install -e '.[test-ref]'",
    )
    returns = _returns(seed, n_assets)
    names = [f"A{i:02d}" for i in range(n_assets)]
    reference = hierarchical.HRPOpt(returns=pd.DataFrame(returns, columns=names)).optimize()
    ours = hierarchical_risk_parity(np.cov(returns, rowvar=False))
    assert np.max(np.abs(ours - np.array([reference[n] for n in names]))) < 1e-8


def test_hrp_matches_pyportfolioopt_on_the_demo_universe_covariance():
    pd = pytest.importorskip("pandas")
    hierarchical = pytest.importorskip(
        "pypfopt.hierarchical_portfolio",
        reason="PyPortfolioOpt (the test-ref extra) is not installed: pip install -e '.[test-ref]'",
    )
    universe = load_universe()
    rng = np.random.default_rng(5)
    vols = np.array([i.annual_vol for i in universe.instruments]) / np.sqrt(252)
    chol = np.linalg.cholesky(universe.correlation * np.outer(vols, vols))
    returns = rng.normal(size=(750, len(vols))) @ chol.T
    names = list(universe.symbols)
    reference = hierarchical.HRPOpt(returns=pd.DataFrame(returns, columns=names)).optimize()
    ours = hierarchical_risk_parity(np.cov(returns, rowvar=False))
    assert np.max(np.abs(ours - np.array([reference[n] for n in names]))) < 1e-8
