"""The standard performance report over a daily equity curve.

Conventions: simple daily returns r_t = E_t / E_{t-1} - 1 (E_0 the initial cash),
252 sessions a year, risk-free rate 0.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal

import numpy as np

from qgtm.core.backtest import BacktestError, worst_spell
from qgtm.core.enums import KillTier
from qgtm.engine.backtest.result import BacktestResult, Trade
from qgtm.engine.data.store import PricePanel

TRADING_DAYS = 252


@dataclass(frozen=True, slots=True)
class Drawdown:
    """Deepest peak-to-trough loss and the longest spell below a previous peak."""

    max_drawdown: float  # fraction of the peak, positive
    max_duration: int  # sessions


@dataclass(frozen=True, slots=True)
class Report:
    """Headline statistics of one backtest."""

    sessions: int
    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float
    max_drawdown_sessions: int
    hit_rate: float
    turnover: float
    exposure_by_sector: dict[str, float]
    monthly_returns: dict[int, dict[int, float]]
    benchmark: str = ""  # what `relative` compares with ("" : nothing)
    relative: dict[str, float] = field(default_factory=dict)  # relative_stats
    trips: dict[str, float] = field(default_factory=dict)  # trade_stats of round_trips
    kill_switch: str = ""  # kill_switch_text: the worst tier reached, 'not tripped', 'off'
    kill_spells: dict[str, dict[str, int | str]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Plain data (JSON-ready)."""
        out = asdict(self)
        out["monthly_returns"] = {
            str(y): {str(m): r for m, r in months.items()}
            for y, months in self.monthly_returns.items()
        }
        return out


def cagr(initial: float, final: float, sessions: int) -> float:
    """(E_T / E_0) ** (252 / T) - 1."""
    if sessions <= 0 or initial <= 0 or final <= 0:
        return float("nan") if final > 0 else -1.0
    return (final / initial) ** (TRADING_DAYS / sessions) - 1.0


def annual_volatility(returns: np.ndarray) -> float:
    """std(r, ddof=1) * sqrt(252)."""
    return float(np.std(returns, ddof=1) * math.sqrt(TRADING_DAYS)) if len(returns) > 1 else 0.0


def sharpe_ratio(returns: np.ndarray) -> float:
    """Annualised Sharpe: mean(r) / std(r, ddof=1) * sqrt(252) (Sharpe 1994, rf = 0)."""
    sd = np.std(returns, ddof=1) if len(returns) > 1 else 0.0
    return float(np.mean(returns) / sd * math.sqrt(TRADING_DAYS)) if sd > 0 else 0.0


def sortino_ratio(returns: np.ndarray) -> float:
    """mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(252) (Sortino & Price 1994, target 0)."""
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2))) if len(returns) else 0.0
    return float(np.mean(returns) / downside * math.sqrt(TRADING_DAYS)) if downside > 0 else 0.0


def drawdown(equity: np.ndarray, initial: float) -> Drawdown:
    """max_t (1 - E_t / max_{s<=t} E_s) with E_0 = initial as the first peak, and the
    longest run of sessions with E_t below the running peak."""
    curve = np.concatenate([[initial], equity])
    peaks = np.maximum.accumulate(curve)
    depth = 1.0 - curve / peaks
    longest = run = 0
    for below in depth > 0:
        run = run + 1 if below else 0
        longest = max(longest, run)
    return Drawdown(float(depth.max()), longest)


def hit_rate(returns: np.ndarray) -> float:
    """Share of sessions with a gain among sessions that moved (r != 0)."""
    moved = returns[returns != 0]
    return float(np.mean(moved > 0)) if len(moved) else 0.0


def annual_turnover(traded_value: np.ndarray, equity: np.ndarray) -> float:
    """Value traded per year as a multiple of equity: mean(traded_t / E_t) * 252."""
    return float(np.mean(traded_value / equity) * TRADING_DAYS) if len(equity) else 0.0


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """Shares opened and later closed, matched first in, first out (one lot or part)."""

    symbol: str
    opened: date
    closed: date
    quantity: int  # signed: > 0 a long, < 0 a short
    entry: Decimal
    exit: Decimal
    pnl: Decimal  # (exit - entry) * quantity less the pro-rata commissions of both fills
    sessions: int  # sessions held (closed - opened, in sessions of the run)


def round_trips(trades: Sequence[Trade], dates: Sequence[date]) -> list[RoundTrip]:
    """Every closed lot of `trades` (in booking order), matched FIFO per symbol.

    A fill that reduces a position closes the oldest open lots first (partly if need
    be); what is left of it opens a lot on the other side. Each fill's commission is
    spread over its shares, so a part of a lot carries its share of both fills'
    commissions. Lots still open at the end are not round trips."""
    index = {d: i for i, d in enumerate(dates)}
    lots: dict[str, deque[list]] = {}  # symbol -> [day, signed shares left, price, fee/share]
    out = []
    for trade in trades:
        fee = trade.commission / abs(trade.quantity) if trade.quantity else Decimal(0)
        left = trade.quantity
        book = lots.setdefault(trade.symbol, deque())
        while left and book and (book[0][1] > 0) != (left > 0):
            day, shares, price, entry_fee = book[0]
            closed = min(abs(left), abs(shares)) * (1 if shares > 0 else -1)
            pnl = (trade.price - price) * closed - (entry_fee + fee) * abs(closed)
            sessions = index.get(trade.day, 0) - index.get(day, 0)
            out.append(
                RoundTrip(trade.symbol, day, trade.day, closed, price, trade.price, pnl, sessions)
            )
            book[0][1] -= closed
            left += closed
            if book[0][1] == 0:
                book.popleft()
        if left:
            book.append([trade.day, left, trade.price, fee])
    return out


def trade_stats(trips: Sequence[RoundTrip]) -> dict[str, float]:
    """Round trips, their win rate, average win and loss (money), profit factor (gross
    wins / gross losses; inf without a loss) and mean sessions held."""
    if not trips:
        return {"round_trips": 0}
    pnl = [float(t.pnl) for t in trips]
    wins = [v for v in pnl if v > 0]
    losses = [v for v in pnl if v < 0]
    return {
        "round_trips": len(trips),
        "trip_win_rate": len(wins) / len(trips),
        "average_win": sum(wins) / len(wins) if wins else 0.0,
        "average_loss": sum(losses) / len(losses) if losses else 0.0,
        "profit_factor": sum(wins) / -sum(losses) if losses else math.inf,
        "average_sessions_held": sum(t.sessions for t in trips) / len(trips),
    }


def kill_switch_spells(
    dates: Sequence[date], tiers: Sequence[str]
) -> dict[str, dict[str, int | str]]:
    """Each kill tier above NORMAL the book closed in: {tier: {"sessions": n, "first":
    ISO date it was first entered}}, mildest tier first. A backtest has no operator to
    reset the switch: with kill_reset "hold" (tiers only step up, as `escalate`) a tier
    entered once holds for the rest of the run; "daily" lets the daily-loss tiers go."""
    spells: dict[str, dict[str, int | str]] = {}
    for day, tier in zip(dates, tiers, strict=True):
        if tier == KillTier.NORMAL.name:
            continue
        spell = spells.setdefault(tier, {"sessions": 0, "first": day.isoformat()})
        spell["sessions"] = int(spell["sessions"]) + 1
    return dict(sorted(spells.items(), key=lambda item: KillTier[item[0]]))


def kill_switch_text(
    spells: Mapping[str, Mapping[str, int | str]], enabled: bool = True, reset: str = "hold"
) -> str:
    """The worst tier the run reached: 'FLATTEN from 2025-02-11 (224 sessions)' when
    tiers hold (to the end of the run), 'THROTTLE on 12 sessions, first 2011-01-04'
    with the daily reset; 'not tripped', or 'off' when the run had no kill switch."""
    if not enabled:
        return "off"
    if not spells:
        return "not tripped"
    tier, spell = worst_spell(spells)
    count = int(spell["sessions"])
    sessions = f"{count:,} session{'' if count == 1 else 's'}"
    if reset == "daily" and tier != KillTier.FLATTEN.name:
        return f"{tier} on {sessions}, first {spell['first']}"
    return f"{tier} from {spell['first']} ({sessions})"


def sector_exposure(
    weights: np.ndarray, symbols: Sequence[str], sector_of: Mapping[str, str]
) -> dict[str, float]:
    """Average gross weight (sum of |w|) per sector across sessions."""
    out: dict[str, float] = {}
    for j, symbol in enumerate(symbols):
        sector = sector_of.get(symbol, "other")
        out[sector] = out.get(sector, 0.0) + float(np.mean(np.abs(weights[:, j])))
    return dict(sorted(out.items()))


def monthly_returns(dates: Sequence[date], returns: np.ndarray) -> dict[int, dict[int, float]]:
    """Compounded return per calendar month: prod(1 + r_t) - 1 over the month's sessions."""
    table: dict[int, dict[int, float]] = {}
    for day, r in zip(dates, returns, strict=True):
        months = table.setdefault(day.year, {})
        months[day.month] = (1.0 + months.get(day.month, 0.0)) * (1.0 + float(r)) - 1.0
    return table


EQUAL_WEIGHT = "equal"
"""The default benchmark: every symbol of the bars, equal weights rebalanced daily."""


def check_benchmark(panel: PricePanel, benchmark: str) -> None:
    """BacktestError unless `benchmark` is EQUAL_WEIGHT or a symbol of the bars."""
    if benchmark != EQUAL_WEIGHT and benchmark not in panel.symbols:
        raise BacktestError(
            f"unknown benchmark {benchmark!r}: use {EQUAL_WEIGHT}, none or one of "
            f"{', '.join(panel.symbols)}"
        )


def benchmark_returns(panel: PricePanel, dates: Sequence[date], benchmark: str) -> np.ndarray:
    """Daily close-to-close returns of `benchmark` on `dates` (consecutive sessions of
    `panel`): one symbol, or EQUAL_WEIGHT (the mean of every symbol's return, i.e. equal
    weights rebalanced each close). The first session's return is from the close before
    it (0 when the panel starts there). BacktestError for an unknown benchmark."""
    check_benchmark(panel, benchmark)
    if benchmark == EQUAL_WEIGHT:
        columns = slice(None)
    else:
        columns = slice(panel.symbols.index(benchmark), panel.symbols.index(benchmark) + 1)
    first = panel.dates.index(dates[0])
    closes = panel.close[max(first - 1, 0) : first + len(dates), columns]
    daily = np.nanmean(closes[1:] / closes[:-1] - 1.0, axis=1)
    return np.concatenate([[0.0], daily]) if first == 0 else daily


def relative_stats(returns: np.ndarray, bench: np.ndarray) -> dict[str, float]:
    """The run against a benchmark's daily returns over the same sessions:
    beta = cov(r, b) / var(b); alpha = (mean(r) - beta * mean(b)) * 252 (Jensen 1968,
    rf = 0); correlation; tracking error = std(r - b) * sqrt(252); information ratio =
    mean(r - b) * 252 / tracking error; and the benchmark's own CAGR and Sharpe.
    Sample moments use ddof = 1."""
    active = returns - bench
    var_b = float(np.var(bench, ddof=1)) if len(bench) > 1 else 0.0
    beta = float(np.cov(returns, bench, ddof=1)[0, 1]) / var_b if var_b > 0 else 0.0
    both = len(bench) > 1 and np.std(returns) > 0 and var_b > 0
    tracking = float(np.std(active, ddof=1) * math.sqrt(TRADING_DAYS)) if len(bench) > 1 else 0.0
    growth = float(np.prod(1.0 + bench))
    return {
        "benchmark_cagr": cagr(1.0, growth, len(bench)),
        "benchmark_sharpe": sharpe_ratio(bench),
        "beta": beta,
        "alpha": (float(np.mean(returns)) - beta * float(np.mean(bench))) * TRADING_DAYS,
        "correlation": float(np.corrcoef(returns, bench)[0, 1]) if both else 0.0,
        "tracking_error": tracking,
        "information_ratio": float(np.mean(active)) * TRADING_DAYS / tracking
        if tracking > 0
        else 0.0,
    }


def report(
    result: BacktestResult,
    sector_of: Mapping[str, str] | None = None,
    benchmark: tuple[str, np.ndarray] | None = None,
) -> Report:
    """Every headline statistic of `result`; with `benchmark` (name, daily returns on
    the result's sessions) also the relative ones (relative_stats)."""
    initial = float(result.meta.get("initial_cash", result.equity[0]))
    returns = result.returns
    dd = drawdown(result.equity, initial)
    growth = cagr(initial, float(result.equity[-1]), len(returns))
    spells = kill_switch_spells(result.dates, result.kill_tiers)
    return Report(
        sessions=len(returns),
        total_return=float(result.equity[-1] / initial - 1.0),
        cagr=growth,
        volatility=annual_volatility(returns),
        sharpe=sharpe_ratio(returns),
        sortino=sortino_ratio(returns),
        calmar=growth / dd.max_drawdown if dd.max_drawdown > 0 else 0.0,
        max_drawdown=dd.max_drawdown,
        max_drawdown_sessions=dd.max_duration,
        hit_rate=hit_rate(returns),
        turnover=annual_turnover(result.traded_value(), result.equity),
        exposure_by_sector=sector_exposure(result.weights(), result.symbols, sector_of or {}),
        monthly_returns=monthly_returns(result.dates, returns),
        benchmark=benchmark[0] if benchmark else "",
        relative=relative_stats(returns, benchmark[1]) if benchmark else {},
        trips=trade_stats(round_trips(result.trades, result.dates)),
        kill_switch=kill_switch_text(
            spells,
            bool(result.meta.get("kill_switch", True)),
            str(result.meta.get("kill_reset", "hold")),
        ),
        kill_spells=spells,
    )
