"""BaseStrategy: what every strategy declares and the one method it implements."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import ClassVar

import numpy as np

from qgtm.core.enums import SignalDirection
from qgtm.core.types import Signal
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import StrategyContext, demo_context
from qgtm.engine.features.regime import CRISIS, MEAN_REVERTING, TRENDING

ALL_REGIMES: tuple[str, ...] = (TRENDING, MEAN_REVERTING, CRISIS)
"""Every label of the regime detector (qgtm.engine.features.regime)."""


@dataclass(frozen=True, slots=True)
class Parameter:
    """A tunable parameter with its default and the range a retrain may search.

    A parameter whose default is an int (a window, a period, a count of sessions) is
    whole: overrides must be whole numbers and are kept as ints.
    """

    name: str
    default: float
    low: float
    high: float
    description: str

    @property
    def whole(self) -> bool:
        """True for a count (an int default): fractional values are refused."""
        return isinstance(self.default, int) and not isinstance(self.default, bool)

    def checked(self, strategy: str, value: float) -> float:
        """`value` inside [low, high] (as an int when whole); ValueError naming the rule."""
        if self.whole and not float(value).is_integer():
            raise ValueError(f"{strategy}: {self.name} takes whole numbers, not {value:g}")
        if not self.low <= value <= self.high:
            raise ValueError(
                f"{strategy}: {self.name}={value:g} outside its range [{self.low:g}, {self.high:g}]"
            )
        return int(value) if self.whole else value


class BaseStrategy(ABC):
    """A rule that turns point-in-time history into Signals.

    Declarations (class attributes): name, family, description, reference (paper or
    well-known practice), parameters with ranges, factor exposures, capacity in USD, the
    features it reads (names in qgtm.engine.features.store.FEATURES or auxiliary series),
    and the regimes it trades in (the aggregator drops its signals in any other regime).

    `generate` receives only bars strictly before the decision session; it must not
    read anything else about the future. Auxiliary series come through `context`
    (point in time by knowledge date); without one, the seeded demo fallback is used.
    """

    name: ClassVar[str]
    family: ClassVar[str]
    description: ClassVar[str]
    reference: ClassVar[str]
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    factor_exposures: ClassVar[dict[str, float]] = {}
    capacity_usd: ClassVar[float] = 0.0
    features: ClassVar[tuple[str, ...]] = ()
    regimes: ClassVar[tuple[str, ...]] = ALL_REGIMES

    def __init__(self, **overrides: float) -> None:
        known = {p.name: p for p in self.parameters}
        unknown = set(overrides) - set(known)
        if unknown:
            raise ValueError(f"{self.name}: unknown parameter(s) {', '.join(sorted(unknown))}")
        self.params: dict[str, float] = {p.name: p.default for p in self.parameters}
        for key, value in overrides.items():
            self.params[key] = known[key].checked(self.name, value)

    @property
    @abstractmethod
    def warmup(self) -> int:
        """Sessions of history needed before the first signal."""

    @abstractmethod
    def generate(
        self, history: PricePanel, as_of: date, *, context: StrategyContext | None = None
    ) -> list[Signal]:
        """Signals for decision session `as_of` from `history` (bars before `as_of`)."""

    def cannot_trade(self, symbols: Sequence[str]) -> str | None:
        """Why this strategy can give no signal on bars of `symbols` (None: it can)."""
        return None

    def trades_in(self, regime: str | None) -> bool:
        """True when the strategy is active in `regime` (unknown regime: active)."""
        return regime is None or regime in self.regimes


def tail(history: PricePanel, rows: int) -> PricePanel:
    """The last `rows` sessions of `history` (a cheap view; the whole panel if shorter)."""
    start = max(len(history) - rows, 0)
    return PricePanel(
        history.dates[start:],
        history.symbols,
        history.open[start:],
        history.high[start:],
        history.low[start:],
        history.close[start:],
        history.volume[start:],
    )


class RuleStrategy(BaseStrategy):
    """A strategy whose rule maps the last `warmup` sessions to one target per symbol.

    Subclasses implement `targets(view, as_of, context)` returning (position, confidence,
    note): `position[i]` is the signed desired exposure of symbol i (NaN = no view,
    0 = flat), `confidence[i]` in [0, 1]. `generate` turns them into Signals with
    direction = sign(position) and weight = |position|. Only `traded` symbols (all when
    None) get a signal; a strategy whose `requires` symbols are not all in the panel (the
    two legs of a pair) stays silent.
    """

    traded: ClassVar[tuple[str, ...] | None] = None
    requires: ClassVar[tuple[str, ...]] = ()
    needs_full_history: ClassVar[bool] = False

    def cannot_trade(self, symbols: Sequence[str]) -> str | None:
        """The `requires` symbols missing, or none of the `traded` ones present."""
        missing = [s for s in self.requires if s not in symbols]
        if missing:
            return f"{self.name} needs {', '.join(self.requires)}; no bars of {', '.join(missing)}"
        if self.traded is not None and not set(self.traded) & set(symbols):
            return f"{self.name} trades only {', '.join(self.traded)}; none is in the bars"
        return None

    def generate(
        self, history: PricePanel, as_of: date, *, context: StrategyContext | None = None
    ) -> list[Signal]:
        """Signals for `as_of` from the last `warmup` sessions of `history`."""
        if len(history) < self.warmup or self.cannot_trade(history.symbols) is not None:
            return []
        view = history if self.needs_full_history else tail(history, self.warmup)
        ctx = demo_context() if context is None else context
        position, confidence, note = self.targets(view, as_of, ctx)
        return self._signals(history.symbols, as_of, position, confidence, note)

    @abstractmethod
    def targets(
        self, view: PricePanel, as_of: date, context: StrategyContext
    ) -> tuple[np.ndarray, np.ndarray, Sequence[str] | str]:
        """(signed position, confidence, note per symbol or one note) for `as_of`."""

    def _signals(
        self,
        symbols: tuple[str, ...],
        as_of: date,
        position: np.ndarray,
        confidence: np.ndarray,
        note: Sequence[str] | str,
    ) -> list[Signal]:
        wanted = set(self.traded) if self.traded is not None else None
        # Python floats (tolist) and math.isfinite: numpy scalars cost more than the rule
        positions = np.asarray(position, dtype=float).tolist()
        confidences = np.asarray(confidence, dtype=float).tolist()
        out = []
        for i, symbol in enumerate(symbols):
            if wanted is not None and symbol not in wanted:
                continue
            value = positions[i]
            if not math.isfinite(value):
                continue
            side = SignalDirection.FLAT
            if value > 0:
                side = SignalDirection.LONG
            elif value < 0:
                side = SignalDirection.SHORT
            conf = confidences[i] if math.isfinite(confidences[i]) else 0.0
            out.append(
                Signal(
                    symbol=symbol,
                    side=side,
                    weight=abs(value),
                    confidence=min(max(conf, 0.0), 1.0),
                    strategy=self.name,
                    as_of=as_of,
                    rationale=note if isinstance(note, str) else note[i],
                )
            )
        return out


def vol_sizing(target_vol: float) -> tuple[Parameter, Parameter]:
    """The usual sizing parameters of a vol-scaled strategy: a 63-session volatility
    window and `target_vol` (the annual vol each position is scaled to)."""
    return (
        Parameter("vol_window", 63, 20, 252, "sessions for realised volatility"),
        Parameter("target_vol", target_vol, 0.05, 0.60, "annual vol each position is scaled to"),
    )


class VolSized(RuleStrategy):
    """A RuleStrategy whose positions are volatility scaled.

    `size(close)` = min(target_vol / sigma_annual, max_weight) per symbol (`vol_scale`;
    max_weight defaults to 1 for strategies without that parameter), from the strategy's
    `vol_window` and `target_vol` parameters. The default warm-up is the vol window plus
    one session (one return more than the window).
    """

    @property
    def warmup(self) -> int:
        """The vol window plus one."""
        return int(self.params["vol_window"]) + 1

    def size(self, close: np.ndarray) -> np.ndarray:
        """Vol-scaled size per symbol from the view's closes."""
        return vol_scale(
            close,
            int(self.params["vol_window"]),
            self.params["target_vol"],
            self.params.get("max_weight", 1.0),
        )


def vol_scale(close: np.ndarray, window: int, target_vol: float, cap: float) -> np.ndarray:
    """Position size per unit of direction: min(target_vol / sigma_annual, cap).

    sigma_annual is the sample stdev of the last `window` daily log returns * sqrt(252)
    (volatility scaling as in Moskowitz, Ooi, Pedersen 2012). Zero vol gives NaN (no view).
    """
    daily = np.diff(np.log(close[-window - 1 :]), axis=0)
    sigma = daily.std(axis=0, ddof=1) * np.sqrt(252)
    with np.errstate(divide="ignore"):
        size = np.where(sigma > 0, np.minimum(target_vol / sigma, cap), np.nan)
    return size


def column(symbols: tuple[str, ...], symbol: str) -> int:
    """Index of `symbol` in a panel's columns."""
    return symbols.index(symbol)
