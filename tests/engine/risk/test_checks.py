"""Pre-trade checks: each limit cuts with its reason; statistics against worked examples;
a hypothesis property that no approved set ever breaks a configured limit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qgtm.core.enums import KillTier
from qgtm.core.types import RiskLimits
from qgtm.engine.risk.checks import (
    RiskContext,
    book_cvar,
    historical_cvar,
    kelly_cap,
    parametric_cvar,
    run_checks,
)

SYMBOLS = ("GLD", "IAU", "SLV", "USO", "UNG", "DBA", "CPER", "DBC")
SECTORS = {
    "GLD": "precious",
    "IAU": "precious",
    "SLV": "precious",
    "USO": "energy",
    "UNG": "energy",
    "DBA": "agriculture",
    "CPER": "industrial",
    "DBC": "broad",
}
LOOSE = RiskLimits(
    max_position_weight=1.0,
    max_gross_leverage=10.0,
    max_sector_weight=10.0,
    max_net_leverage=10.0,
    max_correlated_weight=10.0,
    vol_target=10.0,
    cvar_limit=1.0,
)


def _returns(seed: int = 0, days: int = 300) -> np.ndarray:
    """GLD and IAU almost the same series (rho ~ 0.99); the rest independent."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 0.01, size=(days, len(SYMBOLS)))
    base[:, 1] = base[:, 0] + rng.normal(0, 0.001, size=days)
    return base


def _context(**kw) -> RiskContext:
    return RiskContext(symbols=SYMBOLS, sectors=SECTORS, returns=_returns(), **kw)


def _with(**kw) -> RiskLimits:
    from dataclasses import replace

    return replace(LOOSE, **kw)


# ----- statistics against worked examples -----------------------------------------------
def test_parametric_cvar_of_a_standard_normal_at_97_5_is_2_338():
    # phi(1.959964) / 0.025 = 0.058445 / 0.025 = 2.3378 (Basel FRTB expected shortfall level)
    assert parametric_cvar(0.0, 1.0, 0.975) == pytest.approx(2.3378, abs=1e-4)


def test_historical_cvar_is_the_mean_of_the_worst_tail_by_hand():
    # 40 returns -> ceil(0.025 * 40) = 1 worst loss at 97.5%; ceil(0.1 * 40) = 4 at 90%.
    returns = np.array([0.01] * 34 + [-0.01, -0.02, -0.03, -0.04, -0.05, -0.10])
    assert historical_cvar(returns, 0.975) == pytest.approx(0.10)
    assert historical_cvar(returns, 0.90) == pytest.approx((0.10 + 0.05 + 0.04 + 0.03) / 4)


def test_kelly_cap_is_fraction_times_mu_over_sigma_squared():
    rng = np.random.default_rng(1)
    daily = rng.normal(0.0004, 0.01, size=2000)
    mu, var = daily.mean() * 252, daily.var(ddof=1) * 252
    assert kelly_cap(daily, 0.5) == pytest.approx(0.5 * mu / var)
    assert kelly_cap(-np.abs(daily), 0.5) == 0.0


# ----- each check ---------------------------------------------------------------------
def test_sector_cap_scales_the_sector_down_pro_rata_with_the_reason():
    result = run_checks(
        {"GLD": 0.3, "SLV": 0.3, "USO": 0.1},
        {},
        KillTier.NORMAL,
        _with(max_sector_weight=0.4),
        _context(),
    )
    assert result.approved["GLD"] == pytest.approx(0.2)
    assert result.approved["SLV"] == pytest.approx(0.2)
    assert result.approved["USO"] == pytest.approx(0.1)
    assert any("sector cap precious" in d.reason for d in result.decisions)


def test_correlation_cap_limits_the_combined_weight_of_correlated_names():
    limits = _with(max_correlated_weight=0.3, correlation_threshold=0.8)
    result = run_checks(
        {"GLD": 0.2, "IAU": 0.2, "USO": 0.2}, {}, KillTier.NORMAL, limits, _context()
    )
    assert result.approved["GLD"] + result.approved["IAU"] == pytest.approx(0.3)
    assert result.approved["USO"] == pytest.approx(0.2)  # not correlated: untouched
    assert any(d.reason.startswith("correlation cap GLD+IAU") for d in result.decisions)


def test_net_leverage_cap_cuts_the_dominant_side_only():
    limits = _with(max_net_leverage=0.2)
    result = run_checks(
        {"GLD": 0.3, "USO": 0.3, "UNG": -0.2}, {}, KillTier.NORMAL, limits, _context()
    )
    assert sum(result.approved.values()) == pytest.approx(0.2)
    assert result.approved["UNG"] == pytest.approx(-0.2)


def test_vol_target_scales_the_whole_book_to_the_target():
    result = run_checks({"USO": 1.0}, {}, KillTier.NORMAL, _with(vol_target=0.05), _context())
    daily_sd = _returns()[:, 3][-252:].std(ddof=1)
    assert result.approved["USO"] == pytest.approx(0.05 / (daily_sd * math.sqrt(252)))


def test_fractional_kelly_caps_a_strategy_sleeve():
    rng = np.random.default_rng(2)
    history = list(rng.normal(0.0002, 0.01, size=250))
    cap = kelly_cap(history, 0.5)
    context = _context(sleeves={"tsmom": {"USO": 2 * cap}}, strategy_returns={"tsmom": history})
    result = run_checks({"USO": 2 * cap}, {}, KillTier.NORMAL, _with(kelly_min_obs=100), context)
    assert result.approved["USO"] == pytest.approx(cap)
    assert any(d.reason == "fractional Kelly cap" for d in result.decisions)


def test_a_strategy_without_edge_keeps_only_its_probe_sleeve():
    losing = [-0.001, 0.0005] * 100  # negative mean: Kelly says no position
    context = _context(sleeves={"tsmom": {"USO": 0.6}}, strategy_returns={"tsmom": losing})
    probe = run_checks({"USO": 0.6}, {}, KillTier.NORMAL, _with(kelly_min_obs=100), context)
    assert probe.approved["USO"] == pytest.approx(0.2)  # kelly_min_leverage
    strict = _with(kelly_min_obs=100, kelly_min_leverage=0.0)
    assert run_checks({"USO": 0.6}, {}, KillTier.NORMAL, strict, context).approved["USO"] == 0.0


def test_cvar_limit_scales_the_book_onto_the_limit():
    limits = _with(cvar_limit=0.005)
    result = run_checks({"USO": 0.8, "UNG": 0.5}, {}, KillTier.NORMAL, limits, _context())
    assert max(book_cvar(result.approved, _context(), limits)) == pytest.approx(0.005)
    assert any("CVaR limit" in d.reason for d in result.decisions)


def test_kill_tier_no_new_blocks_and_is_recorded_as_a_block():
    result = run_checks({"GLD": 0.1}, {}, KillTier.NO_NEW, LOOSE, _context())
    assert result.approved == {"GLD": 0.0}
    assert result.decisions[0].blocked
    assert result.outcomes[0].check == "kill_tier"


def test_checks_run_in_the_documented_order():
    result = run_checks({"GLD": 0.1}, {}, KillTier.NORMAL, LOOSE, _context())
    assert [o.check for o in result.outcomes] == [
        "kill_tier",
        "position",
        "sector",
        "correlation",
        "gross",
        "net",
        "vol_target",
        "kelly",
        "cvar",
    ]


# ----- the property -------------------------------------------------------------------
weights = st.floats(min_value=-0.8, max_value=0.8, allow_nan=False)
books = st.dictionaries(st.sampled_from(SYMBOLS), weights, max_size=len(SYMBOLS))
limit_sets = st.builds(
    RiskLimits,
    max_position_weight=st.floats(0.05, 0.5),
    max_gross_leverage=st.floats(0.2, 2.0),
    max_sector_weight=st.floats(0.05, 0.8),
    max_net_leverage=st.floats(0.05, 1.5),
    correlation_threshold=st.floats(0.3, 0.95),
    max_correlated_weight=st.floats(0.05, 0.8),
    vol_target=st.floats(0.02, 0.4),
    cvar_limit=st.floats(0.002, 0.05),
)
CONTEXT = _context()
WINDOW = _returns()[-252:]


def _independent_violations(approved: dict[str, float], limits: RiskLimits) -> list[str]:
    """Measures written out again here, not borrowed from the code under test."""
    tol = 1e-9
    broken = []
    w = np.array([approved.get(s, 0.0) for s in SYMBOLS])
    if np.abs(w).max(initial=0) > limits.max_position_weight + tol:
        broken.append("position")
    for sector in set(SECTORS.values()):
        exposure = sum(abs(approved.get(s, 0.0)) for s in SYMBOLS if SECTORS[s] == sector)
        if exposure > limits.max_sector_weight + tol:
            broken.append("sector")
    corr = np.corrcoef(WINDOW, rowvar=False)
    correlated = corr[0, 1] > limits.correlation_threshold and w[0] != 0 and w[1] != 0
    if correlated and abs(w[0]) + abs(w[1]) > limits.max_correlated_weight + tol:
        broken.append("correlation")
    if np.abs(w).sum() > limits.max_gross_leverage + tol:
        broken.append("gross")
    if abs(w.sum()) > limits.max_net_leverage + tol:
        broken.append("net")
    if math.sqrt(w @ np.cov(WINDOW, rowvar=False) @ w * 252) > limits.vol_target + tol:
        broken.append("vol")
    book = WINDOW @ w
    worst = np.sort(-book)[::-1][: math.ceil(0.025 * len(book))].mean()
    gaussian = -book.mean() + book.std(ddof=1) * 2.3378 if book.std() > 0 else 0.0
    if max(worst, gaussian) > limits.cvar_limit + 1e-6:
        broken.append("cvar")
    return broken


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(targets=books, limits=limit_sets)
def test_no_approved_order_set_ever_breaks_a_configured_limit(targets, limits):
    result = run_checks(targets, {}, KillTier.NORMAL, limits, CONTEXT)
    assert _independent_violations(result.approved, limits) == []


@settings(max_examples=100, deadline=None)
@given(targets=books, current=books, tier=st.sampled_from(list(KillTier)), limits=limit_sets)
def test_kill_tiers_hold_under_every_limit_set(targets, current, tier, limits):
    result = run_checks(targets, current, tier, limits, CONTEXT)
    assert _independent_violations(result.approved, limits) == []
    for symbol, got in result.approved.items():
        have = current.get(symbol, 0.0)
        if tier >= KillTier.FLATTEN:
            assert got == 0.0
        elif tier >= KillTier.NO_NEW:  # only closes or reductions
            same_side = have != 0.0 and math.copysign(1, got) == math.copysign(1, have)
            assert got == 0.0 or (same_side and abs(got) <= abs(have) + 1e-12)


@settings(max_examples=100, deadline=None)
@given(targets=books, current=books, tier=st.sampled_from(list(KillTier)), limits=limit_sets)
def test_approved_names_are_exactly_the_names_targeted_or_held(targets, current, tier, limits):
    # decision.check_risk skips the checks for a book with no names on this property
    result = run_checks(targets, current, tier, limits, CONTEXT)
    assert set(result.approved) == set(targets) | set(current)


@pytest.mark.parametrize("tier", list(KillTier))
def test_a_book_with_no_names_is_approved_empty_under_every_tier(tier):
    for context in (CONTEXT, RiskContext(), None):
        assert run_checks({}, {}, tier, RiskLimits(), context).approved == {}
