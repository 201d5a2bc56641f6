"""The user's own daily bars: CSV (Yahoo-style or close-only) or Parquet, validated per row.

Accepted layouts (column names are matched case-insensitively):
- Yahoo style: Date, Open, High, Low, Close, Adj Close, Volume (+ optional Symbol).
  `Close` is traded; `Adj Close` is read but not used (the fills happen at the quoted
  open, so open/high/low/close must stay on one price scale).
- Close only: Date, Price (or Date, Close), e.g. the EIA spot series. Such a series has
  no intraday range, so each bar is open = high = low = close = Price with volume 0:
  an order decided on day t fills at day t+1's (only) price. Impact by ADV is then
  off (ADV 0 means no impact).
The symbol comes from a Symbol column, else from `symbol=`, else from the file name
(`gld.csv` -> GLD). Rejected rows are reported with the file line and the reason;
accepted rows never need a second look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from qgtm.engine.data.store import PricePanel

COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume")


class UserBarsError(ValueError):
    """The file cannot be used at all (missing, unreadable, wrong columns, no valid rows)."""


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """One row left out, with the line it came from (1 = header) and why."""

    line: int
    symbol: str
    reason: str


JUMP_RATIO = 1.8
"""A close at least this many times the previous one (or at most its inverse) is flagged:
in a commodity ETF such a day is almost always a split the file is not adjusted for, or
a bad print, and a backtest would book it as a return."""


@dataclass(frozen=True, slots=True)
class Jump:
    """An accepted close suspiciously far from the symbol's previous accepted close."""

    symbol: str
    day: date
    previous: float
    close: float

    @property
    def ratio(self) -> float:
        """close / previous close."""
        return self.close / self.previous


@dataclass(frozen=True, slots=True)
class UserBars:
    """Accepted bars (COLUMNS, sorted by symbol then date), the rejected rows, and the
    accepted closes that jump by JUMP_RATIO or more from the previous one (kept, but
    reported: see summary_lines)."""

    bars: pl.DataFrame
    rejected: tuple[RejectedRow, ...]
    close_only: bool
    jumps: tuple[Jump, ...] = ()

    @property
    def symbols(self) -> tuple[str, ...]:
        """Symbols with at least one accepted bar."""
        return tuple(sorted(self.bars["symbol"].unique().to_list()))


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise UserBarsError(f"{path}: no such file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
            return frame.select(pl.all().cast(pl.String))
        return pl.read_csv(path, infer_schema=False, truncate_ragged_lines=True)
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise UserBarsError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from exc


def _number(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _check_bar(o: float, h: float, low: float, c: float, v: float) -> str | None:
    if min(o, h, low, c) <= 0:
        return "non-positive price"
    if h < low:
        return f"high {h} below low {low}"
    if not low <= o <= h:
        return f"open {o} outside [low {low}, high {h}]"
    if not low <= c <= h:
        return f"close {c} outside [low {low}, high {h}]"
    if v < 0:
        return f"negative volume {v}"
    return None


def load_user_bars(path: Path, symbol: str | None = None) -> UserBars:
    """Read and validate `path`; raises UserBarsError when nothing usable remains."""
    raw = _read(path)
    names = {c.strip().lower(): c for c in raw.columns}
    if "date" not in names:
        raise UserBarsError(f"{path}: no Date column (found: {', '.join(raw.columns)})")
    full = all(k in names for k in ("open", "high", "low", "close"))
    price_col = names.get("close") or names.get("price")
    if not full and price_col is None:
        raise UserBarsError(
            f"{path}: need Date,Open,High,Low,Close[,Volume] or Date,Price columns "
            f"(found: {', '.join(raw.columns)})"
        )
    default_symbol = (symbol or path.stem).upper()
    symbol_col = names.get("symbol") or names.get("ticker")
    accepted: list[tuple] = []
    rejected: list[RejectedRow] = []
    last_date: dict[str, date] = {}
    for offset, row in enumerate(raw.iter_rows(named=True)):
        line = offset + 2
        sym = (row[symbol_col] or "").strip().upper() if symbol_col else default_symbol
        if not sym:
            rejected.append(RejectedRow(line, "", "missing symbol"))
            continue
        try:
            day = date.fromisoformat((row[names["date"]] or "").strip())
        except ValueError:
            reason = f"unparseable date {row[names['date']]!r} (want YYYY-MM-DD)"
            rejected.append(RejectedRow(line, sym, reason))
            continue
        if full:
            values = [_number(row[names[k]]) for k in ("open", "high", "low", "close")]
        else:
            values = [_number(row[price_col])] * 4
        volume = _number(row[names["volume"]]) if "volume" in names else 0.0
        if any(v is None for v in values) or volume is None:
            rejected.append(RejectedRow(line, sym, "missing or unparseable number"))
            continue
        o, h, low, c = values  # type: ignore[misc]
        problem = _check_bar(o, h, low, c, volume)
        previous = last_date.get(sym)
        if problem is None and previous == day:
            problem = f"duplicate date {day}"
        elif problem is None and previous is not None and day < previous:
            problem = f"date {day} before the previous row's {previous}"
        if problem:
            rejected.append(RejectedRow(line, sym, problem))
            continue
        last_date[sym] = day
        accepted.append((sym, day, o, h, low, c, int(volume)))
    if not accepted:
        first = (
            f"; first problem: line {rejected[0].line}: {rejected[0].reason}" if rejected else ""
        )
        raise UserBarsError(f"{path}: no valid bars{first}")
    bars = pl.DataFrame(
        accepted,
        schema={
            "symbol": pl.String,
            "date": pl.Date,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Int64,
        },
        orient="row",
    ).sort("symbol", "date")
    return UserBars(bars, tuple(rejected), close_only=not full, jumps=_jumps(bars))


def _jumps(bars: pl.DataFrame) -> tuple[Jump, ...]:
    """Closes at least JUMP_RATIO times (or at most 1 / JUMP_RATIO of) the previous one."""
    previous = pl.col("close").shift(1).over("symbol")
    flagged = bars.with_columns(previous.alias("previous")).filter(
        (pl.col("close") >= pl.col("previous") * JUMP_RATIO)
        | (pl.col("close") * JUMP_RATIO <= pl.col("previous"))
    )
    return tuple(
        Jump(row["symbol"], row["date"], row["previous"], row["close"])
        for row in flagged.iter_rows(named=True)
    )


def to_panel(bars: pl.DataFrame) -> PricePanel:
    """Align symbols on the sessions every one of them has (inner join on date)."""
    symbols = tuple(sorted(bars["symbol"].unique().to_list()))
    common = None
    for sym in symbols:
        days = set(bars.filter(pl.col("symbol") == sym)["date"].to_list())
        common = days if common is None else common & days
    dates = tuple(sorted(common or ()))
    if len(dates) < 2:
        raise UserBarsError("the symbols share fewer than two dates")
    aligned = bars.filter(pl.col("date").is_in(list(dates)))
    fields = {}
    for name in ("open", "high", "low", "close", "volume"):
        wide = aligned.pivot(on="symbol", index="date", values=name).sort("date")
        fields[name] = wide.select(symbols).to_numpy()
    return PricePanel(dates=dates, symbols=symbols, **fields)


def summary_lines(result: UserBars, limit: int = 10) -> list[str]:
    """Human lines: what was accepted, and the first `limit` rejections with reasons."""
    per_symbol = result.bars.group_by("symbol").agg(
        pl.len().alias("n"), pl.col("date").min().alias("first"), pl.col("date").max().alias("last")
    )
    lines = [
        f"accepted {row['n']} bars of {row['symbol']} ({row['first']} .. {row['last']})"
        for row in per_symbol.sort("symbol").iter_rows(named=True)
    ]
    if result.close_only:
        lines.append("close-only series: open = high = low = close, volume 0")
    for jump in result.jumps[:limit]:
        lines.append(
            f"warning: {jump.symbol} {jump.day} close {jump.close:g} after {jump.previous:g} "
            f"(x{jump.ratio:.2f}): a split the file is not adjusted for, or a bad print? "
            "A backtest books it as a return"
        )
    if len(result.jumps) > limit:
        lines.append(f"warning: ... and {len(result.jumps) - limit} more such jumps")
    lines.append(f"rejected {len(result.rejected)} rows")
    lines += [f"  line {r.line} {r.symbol}: {r.reason}" for r in result.rejected[:limit]]
    if len(result.rejected) > limit:
        lines.append(f"  ... and {len(result.rejected) - limit} more")
    return lines


__all__ = [
    "COLUMNS",
    "Jump",
    "RejectedRow",
    "UserBars",
    "UserBarsError",
    "load_user_bars",
    "summary_lines",
    "to_panel",
]
