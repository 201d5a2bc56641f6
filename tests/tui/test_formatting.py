"""Numbers in the terminal: separators, two-decimal prices, signed coloured P&L."""

from __future__ import annotations

from qgtm.tui.formatting import (
    DASH,
    percent,
    price,
    quantity,
    replay_speed,
    signed_money,
    signed_percent,
)
from qgtm.tui.themes import GAIN, LOSS


def test_prices_have_separators_two_decimals_and_align_right() -> None:
    text = price(1234.5)
    assert text.plain == "1,234.50"
    assert text.justify == "right"


def test_unknown_price_is_a_dash() -> None:
    assert price(None).plain == DASH


def test_gains_are_signed_green_and_losses_red() -> None:
    assert (signed_money(1234.567).plain, str(signed_money(1234.567).style)) == ("+1,234.57", GAIN)
    assert (signed_money(-5).plain, str(signed_money(-5).style)) == ("-5.00", LOSS)


def test_fractions_show_as_percentages() -> None:
    assert signed_percent(0.0123).plain == "+1.23%"
    assert percent(0.25).plain == "25.0%"


def test_quantities_have_separators() -> None:
    assert quantity(-12000).plain == "-12,000"


def test_replay_speed_reads_sessions_per_second_or_max() -> None:
    assert replay_speed(1.0) == "1.0 s/s"
    assert replay_speed(0.25) == "0.25 s/s"
    assert replay_speed(0) == "MAX"
