"""Backtest rules shared by the engine's runners, the CLI and the Research screen: how
a run's overrides and sweeps are spelled, and how its statistics are shown. Pure: no
market data, no runner."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from qgtm.core.enums import KillTier


class BacktestError(ValueError):
    """A backtest request the runner cannot honour (bad window, unknown name, ...)."""


def parse_param(text: str) -> tuple[str, float]:
    """'lookback=126' -> ('lookback', 126.0)."""
    key, sep, value = text.partition("=")
    try:
        if not sep or not key.strip():
            raise ValueError
        return key.strip(), float(value)
    except ValueError:
        raise BacktestError(f"bad --param {text!r}: want NAME=NUMBER") from None


def params_text(params: dict[str, Any]) -> str:
    """'lookback=63 skip=0 target_vol=0.2': a strategy's parameters on one line."""
    return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """'lookback=60:252:21' -> ('lookback', [60, 81, ..., 249]) (inclusive of b if hit)."""
    key, sep, spec = text.partition("=")
    try:
        low, high, step = (float(x) for x in spec.split(":"))
        if not sep or step <= 0 or high < low:
            raise ValueError
    except ValueError:
        raise BacktestError(f"bad --sweep {text!r}: want NAME=LOW:HIGH:STEP, STEP > 0") from None
    count = math.floor((high - low) / step + 1e-9) + 1
    if count > 500:
        raise BacktestError(f"--sweep {text!r} has {count} values; at most 500")
    return key.strip(), [round(low + i * step, 10) for i in range(count)]


BACKTEST_FLAGS = {
    "--impact": "impact_bps_at_full_adv",
    "--borrow": "borrow_bps_annual",
    "--kill-reset": "kill_reset",
}
"""One run's [backtest] overrides, as `qgtm backtest` and the Research screen spell them."""


COMPARED: tuple[tuple[str, str, str], ...] = (
    # (key in the summary's report / validation, label, kind)
    ("final_equity", "final equity", "money"),
    ("trades", "trades", "count"),
    ("total_return", "total return", "return"),
    ("cagr", "CAGR", "return"),
    ("volatility", "volatility", "pct"),
    ("sharpe", "Sharpe", "num"),
    ("sortino", "Sortino", "num"),
    ("calmar", "Calmar", "num"),
    ("max_drawdown", "max drawdown", "pct"),
    ("max_drawdown_sessions", "max drawdown sessions", "count"),
    ("kill_switch", "kill switch", "text"),
    ("hit_rate", "hit rate", "pct"),
    ("turnover", "turnover / year", "num"),
    ("round_trips", "round trips", "count"),
    ("profit_factor", "profit factor", "num"),
    ("psr_vs_zero", "PSR vs zero", "num"),
    ("deflated_sharpe", "deflated Sharpe", "num"),
    ("pbo", "PBO", "num"),
    ("beta", "beta", "num"),
    ("alpha", "alpha / year", "return"),
    ("information_ratio", "information ratio", "num"),
)


def stat_text(value: Any, kind: str, signed: bool = False) -> str:
    """A COMPARED statistic as text: money with cents, counts whole, 'pct' and 'return'
    as percents to 2 decimals, 'num' to 3; `signed` puts + before a positive 'return'
    (a gain; a volatility or a drawdown has no sign to show). '' for None."""
    if value is None:
        return ""
    if kind == "text":
        return str(value)
    if kind == "money":
        return f"{value:,.2f}"
    if kind == "count":
        return f"{value:,.0f}"
    number = float(value)
    if not math.isfinite(number):
        return "nan" if number != number else ("inf" if number > 0 else "-inf")
    if kind in ("pct", "return"):
        return f"{number:+.2%}" if signed and kind == "return" else f"{number:.2%}"
    return f"{number:.3f}"


def kill_switch_brief(report: Mapping[str, object]) -> str | None:
    """The worst tier and its month ('FLATTEN 2025-02') for narrow columns, from a
    report's dict; None when the switch never tripped (report's own kill_switch text
    then says why) or the report predates spells."""
    spells = report.get("kill_spells")
    if not spells or not isinstance(spells, Mapping):
        return None
    tier, spell = worst_spell(spells)
    return f"{tier} {str(spell['first'])[:7]}"


def kill_switch_cell(report: Mapping[str, object]) -> str | None:
    """A report dict's kill switch for a narrow cell: the worst tier and its month when
    tripped (kill_switch_brief), else its text ('not tripped', 'off'; None before spells
    were reported)."""
    text = report.get("kill_switch")
    return kill_switch_brief(report) or (str(text) if text is not None else None)


def worst_spell(
    spells: Mapping[str, Mapping[str, int | str]],
) -> tuple[str, Mapping[str, int | str]]:
    """The most restrictive tier of non-empty `spells` with its spell."""
    return max(spells.items(), key=lambda item: KillTier[item[0]])


MONTH_LABELS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def monthly_rows(
    monthly: Mapping[int | str, Mapping[int | str, float]],
) -> list[tuple[int, list[float | None]]]:
    """The monthly returns table as rows: (year, [Jan..Dec, year]), None for months
    outside the run; the year's return compounds its months: prod(1 + m) - 1.

    Takes Report.monthly_returns or its JSON form (string keys)."""
    rows = []
    for year in sorted(monthly, key=int):
        months = {int(m): float(r) for m, r in monthly[year].items()}
        total = math.prod(1.0 + r for r in months.values()) - 1.0
        rows.append((int(year), [months.get(m) for m in range(1, 13)] + [total]))
    return rows


def compact_percent(value: float | None) -> str:
    """A return in percent in at most 4 characters ('' for None): one decimal below
    9.95%, whole percents from there ('-0.4', '12', '-100'), so a year of 13 cells fits
    an 80-column terminal."""
    if value is None:
        return ""
    pct = value * 100.0
    return f"{pct:.1f}" if abs(pct) < 9.95 else f"{pct:.0f}"
