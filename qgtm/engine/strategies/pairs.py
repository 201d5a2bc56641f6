"""Pairs and statistical arbitrage on ETFs that track the same or linked underlyings.

Spread s_t = ln A_t - (alpha + beta ln B_t), with alpha, beta from an OLS regression over
the last `hedge_window` sessions (a rolling hedge ratio, re-estimated every session);
z = (s_t - mean(s)) / stdev(s) over the same window. When z > entry the spread is rich:
short A, long beta x B; when z < -entry the reverse; flat inside the band
(Gatev, Goetzmann, Rouwenhorst 2006; Vidyamurthy 2004).
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import ClassVar

import numpy as np
from statsmodels.tsa.stattools import coint

from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.strategies.base import MEAN_REVERTING, TRENDING, Parameter, RuleStrategy, column


def hedge_ratio(log_a: np.ndarray, log_b: np.ndarray) -> tuple[float, float]:
    """OLS of log_a on log_b: (alpha, beta) = argmin sum (a - alpha - beta b)^2."""
    b_centred = log_b - log_b.mean()
    denom = float(b_centred @ b_centred)
    beta = float(b_centred @ (log_a - log_a.mean()) / denom) if denom > 0 else 0.0
    return float(log_a.mean() - beta * log_b.mean()), beta


def spread_zscore(log_a: np.ndarray, log_b: np.ndarray) -> tuple[float, float]:
    """(z of the latest residual of the OLS spread over the window, beta)."""
    alpha, beta = hedge_ratio(log_a, log_b)
    spread = log_a - alpha - beta * log_b
    std = spread.std(ddof=1)
    return (float(spread[-1] / std) if std > 0 else 0.0), beta


def pair_legs(z: float, beta: float, entry: float, gross: float) -> tuple[float, float]:
    """Signed (A, B) positions: -sign(z) gross/2 in A and +sign(z) beta gross/2 in B when
    |z| > entry, else (0, 0)."""
    if abs(z) <= entry:
        return 0.0, 0.0
    side = -np.sign(z)
    return float(side * gross / 2), float(-side * beta * gross / 2)


class _Pair(RuleStrategy):
    family = "pairs / stat-arb"
    factor_exposures: ClassVar[dict[str, float]] = {"relative_value": 1.0, "market": 0.0}
    features = ("rolling_hedge_ratio", "zscore")
    regimes = (MEAN_REVERTING, TRENDING)
    legs: ClassVar[tuple[str, str]]
    parameters = (
        Parameter("hedge_window", 60, 20, 252, "sessions of the rolling OLS hedge ratio"),
        Parameter("entry", 2.0, 0.5, 4.0, "|z| of the spread needed to trade"),
        Parameter("gross", 1.0, 0.1, 3.0, "gross exposure of the pair"),
    )

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if hasattr(cls, "legs"):
            cls.traded = cls.requires = cls.legs

    @property
    def warmup(self) -> int:
        """The hedge window."""
        return int(self.params["hedge_window"])

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        a, b = (column(view.symbols, s) for s in self.legs)
        log_close = np.log(view.close)
        z, beta = spread_zscore(log_close[:, a], log_close[:, b])
        pos_a, pos_b = pair_legs(z, beta, self.params["entry"], self.params["gross"])
        position = np.full(len(view.symbols), np.nan)
        position[a], position[b] = pos_a, pos_b
        confidence = np.full(len(view.symbols), min(abs(z) / (2 * self.params["entry"]), 1.0))
        note = f"{self.legs[0]}/{self.legs[1]} spread z {z:+.2f}, beta {beta:.2f}"
        return position, confidence, note


class PairGldIau(_Pair):
    """GLD vs IAU: two gold trusts, fade spread dislocations."""

    name = "pair_gld_iau"
    description = "GLD vs IAU: two gold trusts, fade spread dislocations"
    reference = "Gatev, Goetzmann, Rouwenhorst (2006), Pairs trading, RFS 19(3)"
    legs = ("GLD", "IAU")
    capacity_usd = 100_000_000.0


class PairGldSlv(_Pair):
    """Gold vs silver: fade the gold/silver ratio's deviations."""

    name = "pair_gld_slv"
    description = "gold vs silver: fade the gold/silver ratio's deviations"
    reference = (
        "Vidyamurthy (2004), Pairs Trading: Quantitative Methods and Analysis; "
        "gold/silver ratio practice"
    )
    legs = ("GLD", "SLV")
    capacity_usd = 80_000_000.0


class PairGldGdx(_Pair):
    """Gold vs gold miners: fade deviations of miners from bullion."""

    name = "pair_gld_gdx"
    description = "gold vs gold miners: fade deviations of miners from bullion"
    reference = (
        "Vidyamurthy (2004), Pairs Trading; Elliott, van der Hoek, Malcolm "
        "(2005), Pairs trading, QF 5(3)"
    )
    legs = ("GLD", "GDX")
    capacity_usd = 80_000_000.0


class PairUsoBno(_Pair):
    """WTI vs Brent funds: fade dislocations of the WTI-Brent spread."""

    name = "pair_uso_bno"
    description = "WTI vs Brent funds: fade dislocations of the WTI-Brent spread"
    reference = "Gatev, Goetzmann, Rouwenhorst (2006); WTI-Brent spread trading practice"
    legs = ("USO", "BNO")
    capacity_usd = 40_000_000.0


CANDIDATE_PAIRS: tuple[tuple[str, str], ...] = (
    ("GLD", "IAU"),
    ("GLD", "SLV"),
    ("GLD", "GDX"),
    ("USO", "BNO"),
    ("USO", "UGA"),
    ("DBC", "GSG"),
    ("CPER", "DBB"),
    ("CORN", "SOYB"),
)


class CointegrationPairs(RuleStrategy):
    """Engle-Granger cointegration screen over CANDIDATE_PAIRS, then spread z trading.

    Every `refit_every` sessions (counted from the start of the history) the screen runs
    statsmodels' `coint` on the `formation` sessions before the refit point; pairs with
    p < `max_pvalue` are traded until the next refit with the rolling-hedge z-score rule,
    each pair at 1 / (number selected) of the gross. The screen is cached per refit point,
    so between refits a call costs one OLS per selected pair
    (Engle, Granger 1987; Vidyamurthy 2004 ch. 5).
    """

    name = "coint_pairs"
    family = "pairs / stat-arb"
    description = "Engle-Granger cointegrated pairs, rolling hedge ratio, quarterly re-screen"
    reference = "Engle, Granger (1987), Co-integration and error correction, Econometrica 55(2)"
    parameters = (
        Parameter("formation", 504, 126, 1260, "sessions in the cointegration test"),
        Parameter("refit_every", 63, 21, 252, "sessions between screens"),
        Parameter("max_pvalue", 0.05, 0.001, 0.2, "Engle-Granger p-value to select a pair"),
        Parameter("hedge_window", 60, 20, 252, "sessions of the rolling hedge ratio"),
        Parameter("entry", 2.0, 0.5, 4.0, "|z| of the spread needed to trade"),
    )
    factor_exposures: ClassVar[dict[str, float]] = {"relative_value": 1.0, "market": 0.0}
    capacity_usd = 60_000_000.0
    features = ("rolling_hedge_ratio", "zscore")
    regimes = (MEAN_REVERTING, TRENDING)
    needs_full_history = True

    def __init__(self, **overrides: float) -> None:
        super().__init__(**overrides)
        self._screens: dict[tuple[date, str], tuple[tuple[str, str], ...]] = {}

    @property
    def warmup(self) -> int:
        """One formation period."""
        return int(max(self.params["formation"], self.params["hedge_window"]))

    def selected_pairs(self, view: PricePanel) -> tuple[tuple[str, str], ...]:
        """Pairs passing the screen at the latest refit point at or before the view's end."""
        warm, every = self.warmup, int(self.params["refit_every"])
        anchor = warm + (len(view) - warm) // every * every
        window = view.close[anchor - int(self.params["formation"]) : anchor]
        digest = hashlib.blake2b(window.tobytes(), digest_size=12).hexdigest()
        key = (view.dates[anchor - 1], digest)
        if key not in self._screens:
            self._screens[key] = self._screen(view.symbols, np.log(window))
        return self._screens[key]

    def _screen(
        self, symbols: tuple[str, ...], log_window: np.ndarray
    ) -> tuple[tuple[str, str], ...]:
        chosen = []
        for a, b in CANDIDATE_PAIRS:
            if a not in symbols or b not in symbols:
                continue
            x, y = log_window[:, symbols.index(a)], log_window[:, symbols.index(b)]
            if x.std() == 0 or y.std() == 0:
                continue
            _, pvalue, _ = coint(x, y, trend="c", maxlag=1, autolag=None)
            if pvalue < self.params["max_pvalue"]:
                chosen.append((a, b))
        return tuple(chosen)

    def targets(self, view: PricePanel, as_of: date, context: StrategyContext):
        pairs = self.selected_pairs(view)
        position = np.full(len(view.symbols), np.nan)
        confidence = np.zeros(len(view.symbols))
        if not pairs:  # flat on every candidate leg, so the screen shows the verdict
            for leg in {s for pair in CANDIDATE_PAIRS for s in pair} & set(view.symbols):
                position[view.symbols.index(leg)] = 0.0
            return position, confidence, "no cointegrated pair at the last screen"
        hedge = int(self.params["hedge_window"])
        log_close = np.log(view.close[-hedge:])
        notes = [""] * len(view.symbols)
        for a_name, b_name in pairs:
            a, b = view.symbols.index(a_name), view.symbols.index(b_name)
            z, beta = spread_zscore(log_close[:, a], log_close[:, b])
            pos_a, pos_b = pair_legs(z, beta, self.params["entry"], 1.0 / len(pairs))
            for i, pos in ((a, pos_a), (b, pos_b)):
                position[i] = (0.0 if np.isnan(position[i]) else position[i]) + pos
                confidence[i] = max(confidence[i], min(abs(z) / (2 * self.params["entry"]), 1.0))
                notes[i] = f"{a_name}/{b_name} z {z:+.2f}"
        return position, confidence, notes
