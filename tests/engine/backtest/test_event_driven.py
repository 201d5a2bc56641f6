"""Event-driven runner: strict event order, no lookahead, costs booked as specified."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import numpy as np

from qgtm.engine.backtest.costs import CostModel
from qgtm.engine.backtest.event_driven import run_event_driven
from qgtm.engine.backtest.result import BacktestSettings
from qgtm.engine.backtest.sma import SmaCrossover
from qgtm.engine.data.store import PricePanel

SETTINGS = BacktestSettings(costs=CostModel(slippage_bps=5.0))


def test_changing_bars_from_session_k_on_leaves_earlier_decisions_alone(
    demo_panel: PricePanel,
) -> None:
    """Orders filled on k were decided on k-1 from bars < k-1: same quantities, new
    prices (k's open moved). Later decisions may differ: the book after k's fills does."""
    base = run_event_driven(demo_panel, [SmaCrossover(fast=5, slow=20)], SETTINGS)
    traded = sorted({demo_panel.dates.index(t.day) for t in base.trades})
    k = next(i for i in traded if i >= len(demo_panel) - 200)  # a session with fills
    rng = np.random.default_rng(0)
    shock = np.ones_like(demo_panel.close)
    shock[k:] = rng.uniform(0.5, 1.5, size=shock[k:].shape)
    altered = replace(
        demo_panel,
        open=demo_panel.open * shock,
        high=demo_panel.high * shock,
        low=demo_panel.low * shock,
        close=demo_panel.close * shock,
    )
    moved = run_event_driven(altered, [SmaCrossover(fast=5, slow=20)], SETTINGS)
    day_k = demo_panel.dates[k]
    before = [t for t in base.trades if t.day < day_k]
    assert before == [t for t in moved.trades if t.day < day_k]
    at_k_base = [t for t in base.trades if t.day == day_k]
    at_k_moved = [t for t in moved.trades if t.day == day_k]
    assert at_k_base, "pick k on a session with fills"
    assert [(t.symbol, t.quantity) for t in at_k_base] == [
        (t.symbol, t.quantity) for t in at_k_moved
    ]
    assert [t.price for t in at_k_base] != [t.price for t in at_k_moved]
    later = [t for t in base.trades if t.day > day_k]
    assert later != [t for t in moved.trades if t.day > day_k]


def test_fills_at_next_open_plus_slippage_and_per_share_commission(
    demo_panel: PricePanel,
) -> None:
    """Hand check of one fill: price = round4(round4(open) * (1 +/- 5/10^4))."""
    result = run_event_driven(demo_panel, [SmaCrossover(fast=5, slow=20)], SETTINGS)
    trade = result.trades[0]
    i = demo_panel.dates.index(trade.day)
    j = demo_panel.symbols.index(trade.symbol)
    open_price = Decimal(str(round(float(demo_panel.open[i, j]), 4)))
    side = 1 if trade.quantity > 0 else -1
    expected = (open_price * (1 + side * Decimal("0.0005"))).quantize(Decimal("0.0001"))
    assert trade.price == expected
    assert trade.commission == (Decimal("0.005") * abs(trade.quantity)).quantize(Decimal("0.0001"))


def test_borrow_fee_is_charged_on_shorts_each_close() -> None:
    """100 bps a year on a $252,000 short costs 252000 * 0.01 / 252 = $10.00 a session."""
    model = CostModel(borrow_bps_annual=100.0)
    assert model.borrow_charge(Decimal("252000")) == Decimal("10.0000")
    assert CostModel().borrow_charge(Decimal("252000")) == 0


def test_impact_grows_linearly_with_participation() -> None:
    """50 bps at 100% of ADV -> 10% of a 1,000,000-share ADV costs 5 bps."""
    model = CostModel(impact_bps_at_full_adv=50.0)
    assert model.impact_bps(100_000, 1_000_000) == Decimal("5")
    assert model.impact_bps(100_000, 0) == 0
