"""Long-only weighting schemes over a covariance matrix: equal, inverse-vol, ERC, HRP.

Each takes an (n x n) covariance matrix and returns n weights that sum to 1. Signs
(long/short) and the gross budget are applied by the allocator, not here.
"""

from __future__ import annotations

import numpy as np
import scipy.cluster.hierarchy as sch
from scipy.optimize import minimize
from scipy.spatial.distance import squareform


def _check_cov(cov: np.ndarray) -> np.ndarray:
    cov = np.asarray(cov, dtype=float)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
        raise ValueError(f"covariance must be a non-empty square matrix, got shape {cov.shape}")
    if np.any(np.diag(cov) <= 0):
        raise ValueError("covariance has a non-positive variance on its diagonal")
    return cov


def sample_covariance(returns: np.ndarray) -> np.ndarray:
    """Unbiased sample covariance of the columns, always 2-D:
    S = (X - mean)' (X - mean) / (T - 1).

    The same operations, in the same order, as `np.atleast_2d(np.cov(returns,
    rowvar=False))` (copy, column means, centring in place, one `np.dot`, scaling by the
    reciprocal), without np.cov's argument handling; bit-for-bit equal to it
    (tests/engine/risk/test_measure_cache.py). `returns` is (T x N), rows are sessions.
    """
    if np.ndim(returns) != 2:
        raise ValueError(f"returns must be a (T x N) matrix, got {np.ndim(returns)} dimensions")
    x = np.array(returns, ndmin=2, dtype=np.result_type(returns, np.float64)).T
    if x.shape[0] == 0:
        return np.array([]).reshape(0, 0)
    fact = max(x.shape[1] - 1, 0)
    # x.mean(axis=1)'s own two steps (one add-reduce, one true divide by the count)
    # without ndarray.mean's Python-level argument handling
    x -= (np.add.reduce(x, axis=1) / x.shape[1])[:, None]
    cov = np.dot(x, x.T)
    cov *= np.true_divide(1, fact)
    return cov


def equal_weights(cov: np.ndarray) -> np.ndarray:
    """w_i = 1/n."""
    n = _check_cov(cov).shape[0]
    return np.full(n, 1.0 / n)


def inverse_vol(cov: np.ndarray) -> np.ndarray:
    """w_i = (1/sigma_i) / sum_j (1/sigma_j)."""
    inv = 1.0 / np.sqrt(np.diag(_check_cov(cov)))
    return inv / inv.sum()


def inverse_variance(cov: np.ndarray) -> np.ndarray:
    """w_i = (1/sigma_i^2) / sum_j (1/sigma_j^2) (the within-cluster weights of HRP)."""
    inv = 1.0 / np.diag(_check_cov(cov))
    return inv / inv.sum()


def risk_contributions(weights: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """RC_i = w_i (Sigma w)_i / (w' Sigma w): each asset's share of portfolio variance."""
    marginal = cov @ weights
    return weights * marginal / float(weights @ marginal)


def equal_risk_contribution(cov: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Long-only weights with equal risk contributions (Maillard, Roncalli, Teiletche 2010).

    Solves the convex problem min_y 0.5 y' Sigma y - (1/n) sum_i ln y_i (y > 0); at the
    optimum y_i (Sigma y)_i = 1/n for every i, so w = y / sum(y) has equal contributions
    (Spinu 2013, "An algorithm for computing risk parity weights").
    """
    cov = _check_cov(cov)
    n = cov.shape[0]
    if n == 1:
        return np.ones(1)
    scale = float(np.mean(np.diag(cov)))
    sigma = cov / scale  # conditioning only; ERC weights are scale-free
    budget = 1.0 / n

    def objective(y: np.ndarray) -> float:
        return 0.5 * float(y @ sigma @ y) - budget * float(np.log(y).sum())

    def gradient(y: np.ndarray) -> np.ndarray:
        return sigma @ y - budget / y

    start = inverse_vol(sigma) / np.sqrt(float(inverse_vol(sigma) @ sigma @ inverse_vol(sigma)))
    result = minimize(
        objective,
        start,
        jac=gradient,
        method="L-BFGS-B",
        bounds=[(1e-12, None)] * n,
        options={"ftol": tol, "gtol": tol, "maxiter": 10_000},
    )
    y = np.asarray(result.x, dtype=float)
    return y / y.sum()


def correlation_distance(corr: np.ndarray) -> np.ndarray:
    """d_ij = sqrt((1 - rho_ij) / 2), the metric of López de Prado (2016), eq. in section 4.1."""
    return np.sqrt(np.clip((1.0 - np.asarray(corr, dtype=float)) / 2.0, 0.0, 1.0))


def quasi_diagonal_order(cov: np.ndarray, linkage_method: str = "single") -> list[int]:
    """Stage 1+2 of HRP: tree clustering on the correlation distance, then the leaf order.

    Single-linkage clustering (scipy) of d_ij; the dendrogram's left-to-right leaf order
    places similar assets together so the covariance becomes quasi-diagonal.
    """
    cov = _check_cov(cov)
    if cov.shape[0] == 1:
        return [0]
    std = np.sqrt(np.diag(cov))
    corr = cov / np.outer(std, std)
    condensed = squareform(correlation_distance(corr), checks=False)
    link = sch.linkage(condensed, method=linkage_method)
    return [int(i) for i in sch.leaves_list(link)]


def _cluster_variance(cov: np.ndarray, members: list[int]) -> float:
    """Variance of the cluster's inverse-variance portfolio: w' Sigma_cc w."""
    sub = cov[np.ix_(members, members)]
    weights = inverse_variance(sub)
    return float(weights @ sub @ weights)


def hierarchical_risk_parity(cov: np.ndarray, linkage_method: str = "single") -> np.ndarray:
    """Hierarchical risk parity weights (López de Prado 2016, "Building Diversified Portfolios
    that Outperform Out of Sample", J. Portfolio Management 42(4)).

    1. tree clustering of d_ij = sqrt((1-rho_ij)/2); 2. quasi-diagonalisation (leaf order);
    3. recursive bisection: split each cluster of the ordered list in two halves, give the
    left half alpha = 1 - V_left / (V_left + V_right) of the parent's weight and the right
    half 1 - alpha, where V is the variance of a half's inverse-variance portfolio.
    """
    cov = _check_cov(cov)
    order = quasi_diagonal_order(cov, linkage_method)
    weights = np.ones(cov.shape[0])
    clusters = [order]
    while clusters:
        halves = []
        for cluster in clusters:
            if len(cluster) < 2:
                continue
            mid = len(cluster) // 2
            left, right = cluster[:mid], cluster[mid:]
            v_left, v_right = _cluster_variance(cov, left), _cluster_variance(cov, right)
            alpha = 1.0 - v_left / (v_left + v_right)
            weights[left] *= alpha
            weights[right] *= 1.0 - alpha
            halves.extend([left, right])
        clusters = halves
    return weights


SCHEMES = {
    "equal": equal_weights,
    "inverse_vol": inverse_vol,
    "erc": equal_risk_contribution,
    "hrp": hierarchical_risk_parity,
}
"""Weighting schemes by the name used in config ([portfolio] method)."""
