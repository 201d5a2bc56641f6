"""How numbers look in the terminal: right-aligned, thousands separators, signed P&L in colour.

Ratios arrive as fractions (0.0123) and are shown as percentages (1.23%), matching the
`*_pct` convention in `qgtm.core`. Every number or date is a `Datum`: the text on screen
and the value it shows, so a table export writes the value, not the text.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from rich.text import Text

from qgtm.tui.themes import palette

DASH = "—"


class Datum(Text):
    """A table cell's text together with the typed value it shows.

    `value` is the int, float, date or None (shown as a dash) behind the text; `unit`
    names what a float means when the text does not say it plainly: "frac" for a
    fraction shown as a percentage (0.0114 shown as +1.14%), "bps" for basis points.
    Exports write `value` under a column name ending in `_<unit>`.
    """

    __slots__ = ("unit", "value")

    def __init__(
        self,
        text: str,
        value: Any,
        *,
        unit: str = "",
        style: str = "",
        justify: Any = None,
    ) -> None:
        super().__init__(text, style=style, justify=justify)
        self.value = value
        self.unit = unit

    def __eq__(self, other: object) -> bool:
        """Equal when the text, its styles and the value behind it are equal."""
        if not isinstance(other, Datum):
            return False
        return (self.value, self.unit) == (other.value, other.unit) and super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, as rich's Text


def _right(text: str, value: Any, style: str = "", unit: str = "") -> Datum:
    return Datum(text, value, unit=unit, style=style, justify="right")


def number(value: float | None, spec: str, unit: str = "") -> Datum:
    """A right-aligned number formatted with `spec` (e.g. ".3f"); a muted dash for None."""
    if value is None:
        return _right(DASH, None, palette().muted, unit)
    return _right(format(value, spec), value, unit=unit)


def pnl_style(value: float) -> str:
    """The theme's gain colour for a gain, loss colour for a loss, no colour for exactly zero."""
    if value > 0:
        return palette().gain
    if value < 0:
        return palette().loss
    return ""


def price(value: float | None) -> Datum:
    """A price with two decimals, e.g. `1,234.50`; a muted dash when unknown."""
    return number(value, ",.2f")


def money(value: float, decimals: int = 2) -> Datum:
    """An unsigned amount, e.g. `1,000,000.00`."""
    return _right(f"{value:,.{decimals}f}", value)


def signed_money(value: float, decimals: int = 2) -> Datum:
    """A P&L amount with its sign and colour, e.g. green `+1,234.56`."""
    return _right(f"{value:+,.{decimals}f}", value, pnl_style(value))


def signed_percent(fraction: float) -> Datum:
    """A signed change from a fraction, e.g. 0.0123 -> green `+1.23%` (value 0.0123)."""
    return _right(f"{fraction:+.2%}", fraction, pnl_style(fraction), "frac")


def percent(fraction: float | None, decimals: int = 1) -> Datum:
    """An unsigned share from a fraction, e.g. 0.25 -> `25.0%` (value 0.25)."""
    return number(fraction, f".{decimals}%", "frac")


def quantity(value: int | None) -> Datum:
    """A share count with separators, e.g. `-1,200`; a muted dash when unknown."""
    return number(value, ",")


def day(value: date | None) -> Datum:
    """An ISO date; a muted dash when absent."""
    if value is None:
        return Datum(DASH, None, style=palette().muted)
    return Datum(value.isoformat(), value)


def timestamp(iso: str) -> Datum:
    """An ISO time as `YYYY-MM-DD HH:MM:SS`, its UTC offset (the exchange's) left out so
    it fits 19 columns; an export keeps the full ISO text."""
    return Datum(iso[:19].replace("T", " "), iso)


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


def bps(value: float | None) -> Datum:
    """A cost in basis points, one decimal, red when it costs and green when it gains."""
    if value is None:
        return _right(DASH, None, palette().muted, "bps")
    return _right(f"{value:+.1f}", value, pnl_style(-value), "bps")
