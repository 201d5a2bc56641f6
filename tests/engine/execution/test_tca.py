from datetime import datetime
from decimal import Decimal

import pytest

from qgtm.core.enums import Side
from qgtm.core.types import Fill
from qgtm.engine.execution import tca

T = datetime(2024, 3, 6, 10, 0)


def _fill(qty: int, price: str, commission: str = "0") -> Fill:
    return Fill(f"f{qty}{price}", "p", "GLD", Side.BUY, qty, Decimal(price), Decimal(commission), T)


def test_perold_shortfall_on_a_hand_computed_buy_with_an_unfilled_remainder():
    # Decide to buy 1000 at 100.00; 600 fill at 100.10, 300 at 100.20, 100 never fill and
    # the price ends at 100.50; commissions 5.00.
    # IS = (600*0.10 + 300*0.20 + 100*0.50 + 5) / (1000*100) = 175/100000 = 17.5 bps.
    fills = [_fill(600, "100.10", "3"), _fill(300, "100.20", "2")]
    bps = tca.implementation_shortfall_bps(Side.BUY, 1000, fills, Decimal("100"), Decimal("100.50"))
    assert bps == pytest.approx(17.5)


def test_arrival_and_vwap_costs_on_a_hand_computed_sell():
    # Sell at average 49.90 against arrival 50.00 and market VWAP 49.95:
    # arrival = -(49.90-50)/50*1e4 = 20 bps; VWAP = -(49.90-49.95)/49.95*1e4 = 10.01 bps.
    assert tca.arrival_cost_bps(Side.SELL, Decimal("49.90"), Decimal("50")) == pytest.approx(20.0)
    assert tca.vwap_slippage_bps(Side.SELL, Decimal("49.90"), Decimal("49.95")) == pytest.approx(
        10.01001, rel=1e-5
    )


def test_a_price_improvement_is_a_negative_cost():
    assert tca.arrival_cost_bps(Side.BUY, Decimal("99"), Decimal("100")) == pytest.approx(-100)


def test_analyse_combines_the_measures_for_a_parent_order():
    fills = [_fill(600, "100.10", "3"), _fill(300, "100.20", "2")]
    result = tca.analyse(
        client_order_id="p",
        strategy="tsmom",
        symbol="GLD",
        side=Side.BUY,
        algo="VWAP",
        quantity=1000,
        fills=fills,
        decision_price=Decimal("100"),
        arrival_price=Decimal("100.05"),
        vwap_price=Decimal("100.10"),
        end_price=Decimal("100.50"),
    )
    avg = (600 * 100.10 + 300 * 100.20) / 900  # 100.1333...
    assert result.filled_quantity == 900
    assert result.avg_fill_price == pytest.approx(avg)
    assert result.arrival_cost_bps == pytest.approx((avg - 100.05) / 100.05 * 1e4)
    assert result.vwap_slippage_bps == pytest.approx((avg - 100.10) / 100.10 * 1e4)
    assert result.implementation_shortfall_bps == pytest.approx(17.5)


def test_an_unfilled_order_has_only_opportunity_cost():
    bps = tca.implementation_shortfall_bps(Side.SELL, 100, [], Decimal("20"), Decimal("19"))
    # The price fell 5% while we failed to sell: the paper portfolio sold at 20, we still
    # hold, so we are 100 * 1.00 behind it: 100 / (100 * 20) = 500 bps of cost.
    assert bps == pytest.approx(500.0)


def test_window_vwap_from_minute_bars_is_volume_weighted_on_each_bars_vwap():
    from datetime import UTC, datetime

    from qgtm.engine.execution.market_data import MinuteBar, window_vwap

    t = datetime(2024, 3, 6, 14, 30, tzinfo=UTC)
    d = Decimal
    bars = [
        MinuteBar(t, d(100), d(101), d(99), d(100), 1_000, d("100.20")),
        # no reported vw: the typical price (102 + 100 + 101) / 3 = 101
        MinuteBar(t, d(101), d(102), d(100), d(101), 3_000, None),
    ]
    # (100.20 x 1000 + 101 x 3000) / 4000 = 100.8
    assert window_vwap(bars) == Decimal("100.8000")
    assert window_vwap([]) is None
