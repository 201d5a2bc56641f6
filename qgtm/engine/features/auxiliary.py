"""Auxiliary (non-price) series for strategies: macro and COT positioning, point in time.

A `StrategyContext` carries named `AuxSeries`; each observation has the date it describes
and the date it became known (FRED publishes a daily yield the next morning, the CFTC
releases Tuesday's positions on Friday). `StrategyContext.known_before(name, day)` returns
only the observations known strictly before the decision session `day`, so a strategy can
never see a value that was not yet published.

Real providers (FRED, CFTC) fill a context from the market store
(qgtm.engine.features.pit_features); when the store lacks a series, `demo_context()`
supplies a seeded, deterministic fallback whose values for any date never depend on later
dates (a fixed weekday grid from 1990 with a fixed number of draws per day).
`StrategyContext.source_of(name)` says which one a strategy got.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import numpy as np

DEMO_AUX_SEED = 20240607
"""Seed of the demo fallback series; change it and every demo series changes."""

REAL_YIELD = "DFII10"
"""FRED: 10-year TIPS real yield, percent, daily."""
DOLLAR_INDEX = "DTWEXBGS"
"""FRED: broad trade-weighted US dollar index, daily."""
BREAKEVEN = "T10YIE"
"""FRED: 10-year breakeven inflation, percent, daily (no demo fallback)."""
NOMINAL_YIELD = "DGS10"
"""FRED: 10-year Treasury constant-maturity yield, percent, daily (no demo fallback)."""
DEMO_LABEL = "demo fallback"
"""What `StrategyContext.source_of` says for a series served by the demo fallback."""
COT_SYMBOLS = ("GLD", "SLV", "USO", "UNG", "CORN", "WEAT", "SOYB", "CPER")
"""ETFs whose underlying future has a CFTC disaggregated managed-money series."""


def cot_series_name(symbol: str) -> str:
    """Name of the managed-money net position series (contracts) behind `symbol`."""
    return f"COT_MM_NET:{symbol}"


def cot_zscore_name(symbol: str) -> str:
    """Name of the managed-money net position z-score series behind `symbol`."""
    return f"COT_MM_Z:{symbol}"


def cot_noncommercial_zscore_name(symbol: str) -> str:
    """Name of the legacy non-commercial net position z-score series behind `symbol`."""
    return f"COT_NC_Z:{symbol}"


def cot_noncommercial_name(symbol: str) -> str:
    """Name of the legacy-report non-commercial net position series behind `symbol`."""
    return f"COT_NC_NET:{symbol}"


@dataclass(frozen=True, slots=True)
class AuxSeries:
    """One series: observation dates, knowledge dates and values, sorted by knowledge."""

    name: str
    observed: np.ndarray  # datetime64[D]
    known: np.ndarray  # datetime64[D], >= observed
    values: np.ndarray  # float

    def __post_init__(self) -> None:
        if not (len(self.observed) == len(self.known) == len(self.values)):
            raise ValueError(f"aux series {self.name}: arrays of different lengths")
        if len(self.known) and np.any(np.diff(self.known) < np.timedelta64(0, "D")):
            raise ValueError(f"aux series {self.name}: knowledge dates must be sorted")


@dataclass(frozen=True, slots=True)
class StrategyContext:
    """Named point-in-time auxiliary series handed to `BaseStrategy.generate`."""

    series: Mapping[str, AuxSeries] = field(default_factory=dict)
    source: str = "demo"
    demo_fallback: bool = True
    sources: Mapping[str, str] = field(default_factory=dict)
    """Provider label of each real series ("FRED", "CFTC"); see `source_of`."""

    def source_of(self, name: str) -> str:
        """Where `name` comes from: its provider label, `source` for a series this
        context carries without a label, or "demo fallback"."""
        if name in self.series:
            return self.sources.get(name, DEMO_LABEL if self.source == "demo" else self.source)
        if self.demo_fallback and name in demo_context().series:
            return DEMO_LABEL
        return "missing"

    def known_before(self, name: str, day: date) -> np.ndarray:
        """Values of `name` whose knowledge date is before `day`, oldest first.

        A series this context lacks comes from `demo_context()` when `demo_fallback` is
        set; otherwise KeyError names the series it has.
        """
        aux = self.series.get(name)
        if aux is None and self.demo_fallback and self is not demo_context():
            return demo_context().known_before(name, day)
        if aux is None:
            known = ", ".join(sorted(self.series)) or "none"
            raise KeyError(f"no auxiliary series {name!r} (have: {known})")
        end = int(np.searchsorted(aux.known, np.datetime64(day, "D"), side="left"))
        return aux.values[:end]

    def has(self, name: str) -> bool:
        """True when the context carries `name`."""
        return name in self.series


_GRID_START = np.datetime64("1990-01-01", "D")
_GRID_END = np.datetime64("2040-12-31", "D")


def _weekdays() -> np.ndarray:
    days = np.arange(_GRID_START, _GRID_END + 1)
    return days[np.is_busday(days)]


@lru_cache(maxsize=1)
def demo_context() -> StrategyContext:
    """The seeded demo fallback for every auxiliary series strategies use.

    - DFII10: real yield random walk, 5 bp daily steps, from 2.0%, known the next weekday.
    - DTWEXBGS: dollar index log random walk, 0.4% daily, from 100, known the next weekday.
    - COT_MM_NET:<sym>: managed-money net contracts, a mean-reverting AR(1) around zero
      (phi 0.95 weekly, 20k innovations), observed Tuesdays, known the Friday after.
    Every series draws from its own child stream, a fixed count per grid day, so the value
    on any date is independent of how far the grid extends.
    """
    days = _weekdays()
    streams = np.random.default_rng(DEMO_AUX_SEED).spawn(2 + len(COT_SYMBOLS))
    next_day = np.busday_offset(days, 1, roll="forward")
    series: dict[str, AuxSeries] = {}
    real = 2.0 + np.cumsum(streams[0].normal(0.0, 0.05, len(days)))
    series[REAL_YIELD] = AuxSeries(REAL_YIELD, days, next_day, real)
    dollar = 100.0 * np.exp(np.cumsum(streams[1].normal(0.0, 0.004, len(days))))
    series[DOLLAR_INDEX] = AuxSeries(DOLLAR_INDEX, days, next_day, dollar)
    tuesdays = days[(days.astype("datetime64[D]").view("int64") - 5) % 7 == 0]
    fridays = tuesdays + np.timedelta64(3, "D")
    for stream, symbol in zip(streams[2:], COT_SYMBOLS, strict=True):
        shocks = stream.normal(0.0, 20_000.0, len(tuesdays))
        net = _ar1(shocks, 0.95)
        name = cot_series_name(symbol)
        series[name] = AuxSeries(name, tuesdays, fridays, net)
    return StrategyContext(series, source="demo")


def _ar1(shocks: np.ndarray, phi: float) -> np.ndarray:
    """x_t = phi x_{t-1} + e_t, x_0 = e_0."""
    from scipy.signal import lfilter

    return lfilter([1.0], [1.0, -phi], shocks)
