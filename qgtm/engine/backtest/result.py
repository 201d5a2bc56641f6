"""What a backtest produces, shared by both runners, and the settings that produced it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np

from qgtm.core.backtest import BacktestError
from qgtm.core.config import DECISIONS as BACKTEST_DECISIONS
from qgtm.core.config import KILL_RESETS, PortfolioConfig
from qgtm.core.types import RiskLimits
from qgtm.engine.backtest.costs import CostModel
from qgtm.engine.data.store import PricePanel

DECISIONS = BACKTEST_DECISIONS  # declared in core so the CLI parser needs no engine import


@dataclass(frozen=True, slots=True)
class BacktestSettings:
    """Everything besides the strategy and the bars that decides a backtest's outcome."""

    initial_cash: Decimal = Decimal("1000000")
    gross_target: float = 0.6
    risk: RiskLimits = field(default_factory=RiskLimits)
    min_trade_value: Decimal = Decimal("5000")
    costs: CostModel = field(default_factory=CostModel)
    start: date | None = None
    end: date | None = None
    kill_switch: bool = True
    kill_reset: str = "hold"  # KILL_RESETS: how tiers step down (tier_after_close)
    portfolio: PortfolioConfig = field(default_factory=PortfolioConfig)
    sectors: Mapping[str, str] | None = None  # None: the universe's sector tags
    # "live": the live engine's decision (regime, aggregate, allocate, every risk check);
    # "signal": the quick research ranking (inverse-vol weights of the netted signals,
    # then only the context-free checks: kill tier, position, gross, net)
    decision: str = "live"

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise BacktestError(
                f"unknown decision {self.decision!r}; use one of {', '.join(DECISIONS)}"
            )
        if self.kill_reset not in KILL_RESETS:
            raise BacktestError(
                f"unknown kill reset {self.kill_reset!r}; use one of {', '.join(KILL_RESETS)}"
            )

    def as_dict(self) -> dict[str, Any]:
        """Plain data for artifacts and --json."""
        return {
            "initial_cash": str(self.initial_cash),
            "gross_target": self.gross_target,
            "risk": {k: getattr(self.risk, k) for k in self.risk.__dataclass_fields__},
            "min_trade_value": str(self.min_trade_value),
            "costs": self.costs.as_dict(),
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "kill_switch": self.kill_switch,
            "kill_reset": self.kill_reset,
            "portfolio": asdict(self.portfolio),
            "decision": self.decision,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BacktestSettings:
        """The settings `as_dict` wrote (a stored run's config); BacktestError when a
        field is missing or not understood (a run stored by an incompatible version)."""
        try:
            costs = dict(data["costs"])
            costs["commission_per_share"] = Decimal(costs["commission_per_share"])
            return cls(
                initial_cash=Decimal(data["initial_cash"]),
                gross_target=float(data["gross_target"]),
                risk=RiskLimits(**data["risk"]),
                min_trade_value=Decimal(data["min_trade_value"]),
                costs=CostModel(**costs),
                start=date.fromisoformat(data["start"]) if data["start"] else None,
                end=date.fromisoformat(data["end"]) if data["end"] else None,
                kill_switch=bool(data["kill_switch"]),
                kill_reset=str(data.get("kill_reset", "hold")),  # runs stored before: hold
                portfolio=PortfolioConfig(**data["portfolio"]),
                decision=str(data["decision"]),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise BacktestError(f"stored settings not understood ({exc!r})") from None


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill as the backtest booked it."""

    day: date
    symbol: str
    quantity: int  # signed
    price: Decimal
    commission: Decimal


@dataclass(slots=True)
class BacktestResult:
    """Per-session equity, cash and end-of-session holdings, plus every trade."""

    dates: tuple[date, ...]
    symbols: tuple[str, ...]
    equity: np.ndarray
    cash: np.ndarray
    positions: np.ndarray  # int64, sessions x symbols, after the close
    closes: np.ndarray  # marks used for each session
    trades: list[Trade]
    kill_tiers: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def over_window(
        cls,
        panel: PricePanel,
        window: tuple[int, int],
        settings: BacktestSettings,
        runner: str,
        *,
        equity: np.ndarray,
        cash: np.ndarray,
        positions: np.ndarray,
        trades: list[Trade],
        kill_tiers: list[str],
        **meta: Any,
    ) -> BacktestResult:
        """A runner's result for sessions [first, last) of `panel`, marked at the closes
        as the live engine marks them (4-decimal prices)."""
        first, last = window
        return cls(
            dates=panel.dates[first:last],
            symbols=panel.symbols,
            equity=equity,
            cash=cash,
            positions=positions,
            closes=price_units(panel.close)[first:last] / 10_000,
            trades=trades,
            kill_tiers=kill_tiers,
            meta={
                "initial_cash": str(settings.initial_cash),
                "runner": runner,
                "kill_switch": settings.kill_switch,
                "kill_reset": settings.kill_reset,
                **meta,
            },
        )

    @property
    def returns(self) -> np.ndarray:
        """Simple daily returns of equity; the first session against the initial cash."""
        initial = float(self.meta.get("initial_cash", self.equity[0]))
        prev = np.concatenate([[initial], self.equity[:-1]])
        return self.equity / prev - 1.0

    def weights(self) -> np.ndarray:
        """Signed weights of equity at each close (sessions x symbols)."""
        return self.positions * self.closes / self.equity[:, None]

    def traded_value(self) -> np.ndarray:
        """Absolute value traded per session."""
        index = {d: i for i, d in enumerate(self.dates)}
        out = np.zeros(len(self.dates))
        for trade in self.trades:
            out[index[trade.day]] += abs(trade.quantity) * float(trade.price)
        return out


def session_window(panel: PricePanel, settings: BacktestSettings, warmup: int) -> tuple[int, int]:
    """First and one-past-last session index: after warm-up, inside [start, end]."""
    first = max(warmup + 1, 1)
    last = len(panel)
    if settings.start is not None:
        first = max(
            first, next((i for i, d in enumerate(panel.dates) if d >= settings.start), last)
        )
    if settings.end is not None:
        last = next((i for i, d in enumerate(panel.dates) if d > settings.end), last)
    if first >= last:
        span = f"{panel.dates[0]}..{panel.dates[-1]}" if len(panel) else "no bars"
        raise BacktestError(
            f"no sessions to trade: window after {warmup} warm-up sessions is empty (data {span})"
        )
    return first, last


class MoneyMatrix(Sequence[list[Decimal]]):
    """Market data floats as exact 4-decimal prices, row by row: row i is
    [Decimal(str(round(v, 4))) for v in values[i]], as the live engine marks them.

    Rows are converted when first read and then kept: a run reads every close but the
    opens, highs and lows only of sessions with orders, and converting a whole demo panel
    up front costs about 0.1 s per array.
    """

    __slots__ = ("_floats", "_rows")

    def __init__(self, values: np.ndarray) -> None:
        self._floats = np.asarray(values, dtype=float)  # ints convert as float(v) would
        self._rows: list[list[Decimal] | None] = [None] * len(values)

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: int) -> list[Decimal]:  # type: ignore[override]
        row = self._rows[i]  # raises IndexError past the end, so iteration stops there
        if row is None:
            # tolist() gives the same Python floats as float(values[i, j]), faster
            row = [Decimal(str(round(v, 4))) for v in self._floats[i].tolist()]
            self._rows[i] = row
        return row


_MONEY_CACHE: dict[int, tuple[np.ndarray, MoneyMatrix]] = {}


def money_matrix(values: np.ndarray) -> MoneyMatrix:
    """Market data floats as exact 4-decimal prices, as the live engine marks them
    (`MoneyMatrix`: row i, column j is Decimal(str(round(values[i, j], 4)))).

    The last few matrices are remembered by array identity (sweeps reuse one panel).
    """
    cached = _MONEY_CACHE.get(id(values))
    if cached is not None and cached[0] is values:
        return cached[1]
    converted = MoneyMatrix(values)
    if len(_MONEY_CACHE) >= 8:
        _MONEY_CACHE.pop(next(iter(_MONEY_CACHE)))
    _MONEY_CACHE[id(values)] = (values, converted)
    return converted


_UNITS_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def price_units(values: np.ndarray) -> np.ndarray:
    """`money_matrix` as int64 units of 1/100 cent (the compiled booking's prices).

    round(v, 4) rounds v's exact binary value half-even; rint(v * 10^4) agrees except
    where v * 10^4 sits within float error of a half unit, and those few entries take
    the Decimal route. Remembered by array identity, as money_matrix.
    """
    cached = _UNITS_CACHE.get(id(values))
    if cached is not None and cached[0] is values:
        return cached[1]
    scaled = np.asarray(values, dtype=float) * 10_000
    units = np.rint(scaled).astype(np.int64)
    near_tie = np.abs(np.abs(scaled - np.floor(scaled)) - 0.5) < 1e-6
    for index in zip(*np.nonzero(near_tie), strict=True):
        units[index] = int(Decimal(str(round(float(values[index]), 4))).scaleb(4))
    if len(_UNITS_CACHE) >= 8:
        _UNITS_CACHE.pop(next(iter(_UNITS_CACHE)))
    _UNITS_CACHE[id(values)] = (values, units)
    return units
