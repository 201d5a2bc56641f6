"""How numbers look in the terminal: right-aligned, thousands separators, signed P&L in colour.

Ratios arrive as fractions (0.0123) and are shown as percentages (1.23%), matching the
`*_pct` convention in `qgtm.core`.
"""

from __future__ import annotations

from datetime import date, datetime

from rich.text import Text

from qgtm.tui.themes import palette

DASH = "—"


def _right(text: str, style: str = "") -> Text:
    return Text(text, style=style, justify="right")


def pnl_style(value: float) -> str:
    """The theme's gain colour for a gain, loss colour for a loss, no colour for exactly zero."""
    if value > 0:
        return palette().gain
    if value < 0:
        return palette().loss
    return ""


def price(value: float | None) -> Text:
    """A price with two decimals, e.g. `1,234.50`; a muted dash when unknown."""
    if value is None:
        return _right(DASH, palette().muted)
    return _right(f"{value:,.2f}")


def money(value: float, decimals: int = 2) -> Text:
    """An unsigned amount, e.g. `1,000,000.00`."""
    return _right(f"{value:,.{decimals}f}")


def signed_money(value: float, decimals: int = 2) -> Text:
    """A P&L amount with its sign and colour, e.g. green `+1,234.56`."""
    return _right(f"{value:+,.{decimals}f}", pnl_style(value))


def signed_percent(fraction: float) -> Text:
    """A signed change from a fraction, e.g. 0.0123 -> green `+1.23%`."""
    return _right(f"{fraction:+.2%}", pnl_style(fraction))


def percent(fraction: float) -> Text:
    """An unsigned share from a fraction, e.g. 0.25 -> `25.0%`."""
    return _right(f"{fraction:.1%}")


def quantity(value: int) -> Text:
    """A share count with separators, e.g. `-1,200`."""
    return _right(f"{value:,}")


def day(value: date | None) -> Text:
    """An ISO date; a muted dash when absent."""
    if value is None:
        return Text(DASH, style=palette().muted)
    return Text(value.isoformat())


def sim_clock(sim_time: datetime | None, session: date | None) -> str:
    """The simulated clock as `YYYY-MM-DD HH:MM`, or the session date, or a dash."""
    if sim_time is not None:
        return sim_time.strftime("%Y-%m-%d %H:%M")
    if session is not None:
        return session.isoformat()
    return DASH


def replay_speed(speed: float) -> str:
    """Replay speed in sessions per second, e.g. `1.0 s/s`, `0.25 s/s`; `MAX` for 0."""
    if speed <= 0:
        return "MAX"
    if speed >= 1:
        return f"{speed:.1f} s/s"
    return f"{speed:.3g} s/s"


def side(value: str) -> Text:
    """BUY in green, SELL in red, as on a broker blotter."""
    colours = palette()
    return Text(value, style=f"bold {colours.gain if value.upper() == 'BUY' else colours.loss}")


def bps(value: float | None) -> Text:
    """A cost in basis points, one decimal, red when it costs and green when it gains."""
    if value is None:
        return _right(DASH, palette().muted)
    return _right(f"{value:+.1f}", pnl_style(-value))
