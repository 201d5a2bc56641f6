"""The vectorised runner reproduces the event-driven runner exactly."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from qgtm.engine.backtest.costs import CostModel
from qgtm.engine.backtest.event_driven import run_event_driven
from qgtm.engine.backtest.result import BacktestSettings
from qgtm.engine.backtest.sma import SmaCrossover
from qgtm.engine.backtest.vectorised import run_vectorised
from qgtm.engine.data.store import PricePanel
from qgtm.engine.strategies.registry import create

COSTLY = BacktestSettings(
    costs=CostModel(slippage_bps=5.0, impact_bps_at_full_adv=50.0, borrow_bps_annual=150.0)
)


@pytest.mark.parametrize(
    "strategy",
    [create("tsmom", lookback=120, skip=5), SmaCrossover(fast=5, slow=20)],
    ids=["tsmom-generic-signals", "sma-vectorised-signals"],
)
def test_vectorised_matches_event_driven_positions_and_equity(
    demo_panel: PricePanel, strategy
) -> None:
    event = run_event_driven(demo_panel, [strategy], COSTLY)
    vector = run_vectorised(demo_panel, [strategy], COSTLY)
    assert len(event.trades) > 50  # the comparison covers real trading
    assert event.dates == vector.dates
    np.testing.assert_array_equal(event.positions, vector.positions)
    np.testing.assert_allclose(vector.equity, event.equity, rtol=1e-9, atol=0)
    assert event.trades == vector.trades


def test_runners_agree_through_a_kill_switch_flatten(demo_panel: PricePanel) -> None:
    """A tight drawdown limit trips FLATTEN mid-run; both runners close out identically."""
    from dataclasses import replace

    from qgtm.core.types import RiskLimits

    tight = replace(COSTLY, risk=RiskLimits(max_drawdown_pct=0.02, daily_loss_limit=0.01))
    strategy = SmaCrossover(fast=5, slow=20)
    event = run_event_driven(demo_panel, [strategy], tight)
    vector = run_vectorised(demo_panel, [strategy], tight)
    assert "FLATTEN" in event.kill_tiers
    assert event.positions[-1].sum() == 0
    np.testing.assert_array_equal(event.positions, vector.positions)
    np.testing.assert_allclose(vector.equity, event.equity, rtol=1e-9, atol=0)
    assert event.kill_tiers == vector.kill_tiers


def test_runners_agree_when_daily_tiers_step_down(demo_panel: PricePanel) -> None:
    """kill_reset "daily" with a tight daily loss limit: THROTTLE and NO_NEW days come
    and go (each lasts one session), and both runners book them identically."""
    from dataclasses import replace

    from qgtm.core.types import RiskLimits

    daily = replace(
        COSTLY, risk=RiskLimits(daily_loss_limit=0.004, max_drawdown_pct=0.5), kill_reset="daily"
    )
    strategy = SmaCrossover(fast=5, slow=20)
    event = run_event_driven(demo_panel, [strategy], daily)
    vector = run_vectorised(demo_panel, [strategy], daily)
    tiers = event.kill_tiers
    stepped_down = [a for a, b in pairwise(tiers) if a in ("THROTTLE", "NO_NEW") and b == "NORMAL"]
    assert len(stepped_down) >= 3
    held = run_event_driven(demo_panel, [strategy], replace(daily, kill_reset="hold"))
    assert held.kill_tiers[-1] in ("THROTTLE", "NO_NEW") and held.trades != event.trades
    np.testing.assert_array_equal(event.positions, vector.positions)
    np.testing.assert_allclose(vector.equity, event.equity, rtol=1e-9, atol=0)
    assert event.kill_tiers == vector.kill_tiers


@pytest.mark.parametrize(
    ("methods", "decision"),
    [(("tsmom_3m", "xsmom_6m", "bollinger_mr"), "live"), (("tsmom", "st_reversal"), "signal")],
    ids=["three-strategies-hrp-regime-filter-live", "two-strategies-signal-decision"],
)
def test_runners_agree_on_a_multi_strategy_multi_asset_book(
    demo_panel: PricePanel, methods: tuple[str, ...], decision: str
) -> None:
    """Several strategies over the whole universe through the real allocate() (HRP) and
    every risk check, with impact and borrow costs and algo orders; and the quick
    "signal" decision. Same trades, positions and equity in both runners."""
    from dataclasses import replace

    from qgtm.core.config import PortfolioConfig
    from qgtm.core.types import RiskLimits

    settings = replace(
        COSTLY,
        portfolio=PortfolioConfig(method="hrp"),
        risk=RiskLimits(kelly_min_obs=40, vol_target=0.10),
        costs=replace(COSTLY.costs, spread_bps=2.0),
        decision=decision,
        start=demo_panel.dates[300],
    )
    strategies = [create(name) for name in methods]
    event = run_event_driven(demo_panel, strategies, settings)
    vector = run_vectorised(demo_panel, strategies, settings)
    assert len({t.symbol for t in event.trades}) > 5  # a multi-asset book
    np.testing.assert_array_equal(event.positions, vector.positions)
    np.testing.assert_allclose(vector.equity, event.equity, rtol=1e-9, atol=0)
    assert event.trades == vector.trades
