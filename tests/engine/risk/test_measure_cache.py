"""The session-measure cache changes no result.

Properties against the pre-cache implementation (reference_checks.py, a frozen copy):
the whole pipeline approves the same weights with the same decisions and outcomes, the
numpy closure groups a graph exactly as scipy's connected_components, and the lean
covariance is bit-for-bit numpy's np.cov.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.sparse.csgraph import connected_components

from qgtm.core.enums import KillTier
from qgtm.core.types import RiskLimits
from qgtm.engine.portfolio.weighting import sample_covariance
from qgtm.engine.risk import checks
from tests.engine.risk import reference_checks as reference

SYMBOLS = ("GLD", "IAU", "SGOL", "SLV", "USO", "BNO", "UNG", "DBA", "CPER", "DBC")
SECTORS = {
    "GLD": "precious",
    "IAU": "precious",
    "SGOL": "precious",
    "SLV": "precious",
    "USO": "energy",
    "BNO": "energy",
    "UNG": "energy",
    "DBA": "agriculture",
    "CPER": "industrial",
}  # DBC has no sector tag


def _scipy_groups(adjacency: np.ndarray) -> list[list[int]]:
    count, labels = connected_components(adjacency, directed=False)
    groups = [[i for i, lab in enumerate(labels) if lab == k] for k in range(count)]
    return [g for g in groups if len(g) > 1]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 20).flatmap(lambda n: arrays(bool, (n, n), elements=st.booleans())))
def test_connected_groups_equal_scipy_connected_components(adjacency: np.ndarray) -> None:
    # asymmetric matrices and set diagonals included: scipy joins i-j on either direction
    assert checks.connected_groups(adjacency) == _scipy_groups(adjacency)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 20), blocks=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_connected_groups_on_block_graphs(n: int, blocks: int, seed: int) -> None:
    """Sparse chains and dense blocks, shuffled: the shapes real correlation graphs have."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, blocks, n)
    adjacency = (label[:, None] == label[None, :]) & (rng.random((n, n)) < 0.3)
    assert checks.connected_groups(adjacency) == _scipy_groups(adjacency)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.integers(2, 300),
    cols=st.integers(1, 20),
    seed=st.integers(0, 2**32 - 1),
    layout=st.sampled_from(["C", "F", "strided", "columns"]),
)
def test_sample_covariance_is_bit_for_bit_numpy_cov(
    rows: int, cols: int, seed: int, layout: str
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, rng.uniform(1e-4, 0.1), size=(rows * 2, cols + 2))
    view = {
        "C": np.ascontiguousarray(x[:rows, :cols]),
        "F": np.asfortranarray(x[:rows, :cols]),
        "strided": x[::2, :cols],
        "columns": x[:rows, list(range(cols + 1, 0, -1))[:cols]],
    }[layout]
    before = view.copy()
    expected = np.atleast_2d(np.cov(view, rowvar=False))
    got = sample_covariance(view)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(view, before)  # the input is not centred in place


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(2, 600),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1e-6, 0.01, 1.0, 1e150]),
    strided=st.booleans(),
    special=st.sampled_from([None, 0.0, -0.0, np.nan, np.inf]),
)
def test_mean_and_variance_are_bit_for_bit_numpy_mean_and_var(
    n: int, seed: int, scale: float, strided: bool, special: float | None
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0003 * scale, scale, size=n * 2)
    series = x[::2] if strided else x[:n]
    if special is not None:
        series[rng.integers(0, n)] = special
    with np.errstate(all="ignore"):
        got = checks.mean_and_variance(series)
        want = (float(series.mean()), float(series.var(ddof=1)))
    # repr tells -0.0 from 0.0 and shows NaN equal to itself
    assert [repr(v) for v in got] == [repr(v) for v in want]


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 600),
    seed=st.integers(0, 2**32 - 1),
    alpha=st.sampled_from([0.5, 0.95, 0.975, 0.99]),
)
def test_historical_cvar_is_bit_for_bit_the_uncached_one(n: int, seed: int, alpha: float) -> None:
    series = np.random.default_rng(seed).normal(0.0003, 0.01, n)
    got = checks.historical_cvar(series, alpha)
    assert repr(got) == repr(reference.historical_cvar(series, alpha))


def test_kelly_cap_of_a_series_too_short_for_a_variance_is_numpys_answer() -> None:
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        assert repr(checks.kelly_cap([0.01], 0.5)) == repr(reference.kelly_cap([0.01], 0.5))


@settings(max_examples=150, deadline=None)
@given(
    rows=st.integers(3, 300),
    cols=st.integers(2, 20),
    seed=st.integers(0, 2**32 - 1),
    flat=st.integers(0, 3),
)
def test_correlation_matrix_is_bit_for_bit_numpy_corrcoef(
    rows: int, cols: int, seed: int, flat: int
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.01, size=(rows, cols))
    x[:, 1] = x[:, 0] * rng.uniform(-2, 2) + rng.normal(0, 1e-4, rows)  # near +-1
    x[:, : min(flat, cols)] = 0.5  # columns without variance: NaN rows and columns
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = np.corrcoef(x, rowvar=False)
    np.testing.assert_array_equal(checks.correlation_matrix(x), expected)


def _market(seed: int, days: int, gaps: bool) -> np.ndarray:
    """Returns with correlated clusters (gold, oil) and, optionally, NaN rows."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0, rng.uniform(0.005, 0.03), size=(days, len(SYMBOLS)))
    for lead, follower, noise in ((0, 1, 0.001), (0, 2, 0.004), (4, 5, 0.006), (0, 3, 0.012)):
        r[:, follower] = r[:, lead] + rng.normal(0, noise, size=days)
    if gaps:
        r[rng.integers(0, days, 5), rng.integers(0, len(SYMBOLS), 5)] = np.nan
    return r


weights = st.floats(min_value=-0.8, max_value=0.8, allow_nan=False)
books = st.dictionaries(st.sampled_from(SYMBOLS), weights, max_size=len(SYMBOLS))
sleeve_sets = st.dictionaries(st.sampled_from(["a", "b", "c"]), books, max_size=3)
limit_sets = st.builds(
    RiskLimits,
    max_position_weight=st.floats(0.05, 0.6),
    max_gross_leverage=st.floats(0.2, 2.0),
    max_sector_weight=st.floats(0.05, 0.9),
    max_net_leverage=st.floats(0.05, 1.5),
    correlation_threshold=st.floats(0.0, 0.99),
    max_correlated_weight=st.floats(0.05, 0.9),
    vol_target=st.floats(0.02, 0.6),
    cvar_limit=st.floats(0.002, 0.06),
    cvar_alpha=st.sampled_from([0.95, 0.975, 0.99]),
    risk_lookback=st.sampled_from([20, 60, 252]),
    kelly_min_obs=st.sampled_from([2, 30]),
    kelly_min_leverage=st.floats(0.0, 0.5),
    throttle_factor=st.floats(0.1, 0.9),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    targets=books,
    current=books,
    tier=st.sampled_from(list(KillTier)),
    limits=limit_sets,
    sleeves=sleeve_sets,
    seed=st.integers(0, 2**32 - 1),
    days=st.sampled_from([0, 2, 5, 40, 300]),
    gaps=st.booleans(),
)
def test_run_checks_equals_the_uncached_pipeline(
    targets, current, tier, limits, sleeves, seed, days, gaps
) -> None:
    returns = _market(seed, days, gaps) if days else np.zeros((0, 0))
    rng = np.random.default_rng(seed)
    history = {k: list(rng.normal(0.0003, 0.01, 40)) for k in sleeves}
    facts = dict(
        symbols=SYMBOLS,
        sectors=SECTORS,
        returns=returns,
        sleeves=sleeves,
        strategy_returns=history,
    )
    got = checks.run_checks(targets, current, tier, limits, checks.RiskContext(**facts))
    want = reference.run_checks(targets, current, tier, limits, reference.RiskContext(**facts))
    assert got.approved == want.approved
    assert [tuple(vars_of(d)) for d in got.decisions] == [tuple(vars_of(d)) for d in want.decisions]
    assert [tuple(vars_of(o)) for o in got.outcomes] == [tuple(vars_of(o)) for o in want.outcomes]


def vars_of(record: object) -> tuple:
    """A slots dataclass's field values (the two modules' classes are distinct types)."""
    return tuple(getattr(record, name) for name in record.__dataclass_fields__)  # type: ignore[attr-defined]


@settings(max_examples=80, deadline=None)
@given(
    book=books,
    limits=limit_sets,
    other=limit_sets,
    seed=st.integers(0, 3),
    gaps=st.booleans(),
)
def test_each_measure_equals_its_uncached_value_on_a_shared_context(
    book, limits, other, seed, gaps
) -> None:
    """One context reused across books and limits (as the Risk screen and the final guard
    reuse one) keeps every measure keyed by what it depends on."""
    facts = dict(symbols=SYMBOLS, sectors=SECTORS, returns=_market(seed, 300, gaps))
    shared = SHARED.setdefault((seed, gaps), checks.RiskContext(**facts))
    old = reference.RiskContext(**facts)
    for lim in (limits, other, limits):
        assert checks.book_volatility(book, shared, lim) == reference.book_volatility(
            book, old, lim
        )
        assert checks.book_cvar(book, shared, lim) == reference.book_cvar(book, old, lim)
        assert checks.held_groups(book, shared, lim) == reference.held_groups(book, old, lim)
        assert checks.limit_violations(book, shared, lim) == reference.limit_violations(
            book, old, lim
        )
        np.testing.assert_array_equal(shared.window(lim), old.window(lim))
        window = old.window(lim)
        usable = window.ndim == 2 and window.shape[0] >= 3 and window.shape[1] == len(SYMBOLS)
        assert (shared.usable_window(lim) is not None) == usable  # remembered per lookback


SHARED: dict[tuple[int, bool], checks.RiskContext] = {}


def test_a_replaced_context_measures_its_own_returns() -> None:
    limits = RiskLimits()
    first = checks.RiskContext(symbols=SYMBOLS, sectors=SECTORS, returns=_market(1, 300, False))
    book = {"GLD": 0.2, "USO": -0.1}
    vol = checks.book_volatility(book, first, limits)
    second = replace(first, returns=_market(2, 300, False))
    assert second.memo == {}
    assert checks.book_volatility(book, second, limits) != vol
    assert checks.book_volatility(book, first, limits) == vol
    fresh = checks.RiskContext(symbols=SYMBOLS, sectors=SECTORS, returns=second.returns)
    assert checks.book_volatility(book, fresh, limits) == checks.book_volatility(
        book, second, limits
    )
