"""A backtest's side of the one decision (engine/decision.decide).

Both backtest runners decide each session with the live engine's own function;
`SessionDecision` supplies what a backtest keeps instead of state.sqlite: its
DecisionRules (from BacktestSettings), the regime labels (cached per panel prefix, since
the Markov fit dominates a backtest's time), the returns and volatilities as slices of
panel-wide arrays, and a DecisionRecorder that keeps only the proposed sleeves, in
memory, for the Kelly cap. `GivenSignals` and `MatrixSignals` are the SignalSources of
precomputed signal sets (the vectorised runner's matrices).

Not reproduced (documented differences): the data-quality block (`blocked_symbols` reads
the live market store's quality log; backtests take the bars as given), the learning loop
(a backtest trades one fixed parameter set), and the algo schedule (orders the live
engine would work as VWAP/TWAP fill at the open as market orders here).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path

import numpy as np

from qgtm.core.enums import KillTier, SignalDirection
from qgtm.core.paths import replaced_whole
from qgtm.core.types import Signal
from qgtm.core.universe import load_universe
from qgtm.engine.backtest.result import BacktestSettings
from qgtm.engine.data.store import PricePanel
from qgtm.engine.decision import DecisionPoint, DecisionRules, decide
from qgtm.engine.features.regime import RegimeDetector
from qgtm.engine.portfolio.aggregator import ACTIVE, FILTERED, Aggregation, StrategyStatus
from qgtm.engine.portfolio.allocator import AllocationSettings, realised_vol_matrix
from qgtm.engine.risk.checks import CheckResult, sleeve_day_return, sleeve_window
from qgtm.engine.strategies.base import ALL_REGIMES, BaseStrategy

REGIME_ENTRIES = 100_000
"""Labels a detector setting keeps (memory and file), about 20 demo-length panels; the
oldest are dropped first."""
REGIME_VERSION = 3
"""Part of every stored label's key: bump it when RegimeDetector.label can answer
differently for the same bars and settings, so no label of the old code is reused."""
_REGIME_LABELS: dict[tuple, dict[str, str | None]] = {}  # detector settings -> labels
_REGIME_LOCK = threading.Lock()  # the Research screen runs backtests in threads
_REGIME_DIR: list[Path] = []  # where labels are also kept on disk (use_regime_cache)


def use_regime_cache(directory: Path | None) -> None:
    """Also keep regime labels in `directory` (None: memory only, the default).

    Every backtest process (a CLI run, a league or sweep worker, a Research-screen job)
    otherwise fits the Markov model and runs the filters for its first regime-filtered
    strategy again: about 7 s over the demo market. One file per detector setting (and
    REGIME_VERSION) maps the bars before a session (`prefix_keys`) to its label, so a
    panel that extends another (a data refresh, the replay's point-in-time cut) reuses
    every label of the sessions they share. An unreadable file is ignored and rewritten.
    """
    _REGIME_DIR[:] = [directory] if directory is not None else []


def regime_cache_dir() -> Path | None:
    """The directory use_regime_cache set (None: memory only)."""
    return _REGIME_DIR[0] if _REGIME_DIR else None


def regime_cache_for(data_dir: Path) -> Path:
    """Where a data directory keeps its regime labels."""
    return data_dir / "cache" / "regime"


def _regime_file(settings: tuple) -> Path | None:
    if not _REGIME_DIR:
        return None
    name = hashlib.blake2b(repr((REGIME_VERSION, settings)).encode(), digest_size=16).hexdigest()
    return _REGIME_DIR[0] / f"regime-{name}.json"


def _load_labels(settings: tuple) -> dict[str, str | None]:
    path = _regime_file(settings)
    if path is None or not path.exists():
        return {}
    try:
        stored = json.loads(path.read_text())
        return {str(k): (None if v is None else str(v)) for k, v in stored.items()}
    except (OSError, ValueError, AttributeError, TypeError):
        logging.getLogger(__name__).warning("event=regime_cache_unreadable path=%s", path)
        return {}


def _capped(labels: dict[str, str | None]) -> dict[str, str | None]:
    """The newest REGIME_ENTRIES labels (insertion order)."""
    if len(labels) <= REGIME_ENTRIES:
        return labels
    return dict(list(labels.items())[-REGIME_ENTRIES:])


def _store_labels(settings: tuple, labels: dict[str, str | None]) -> None:
    """Merge `labels` into the settings' file (another process may have added some)."""
    path = _regime_file(settings)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = _capped({**_load_labels(settings), **labels})
        with replaced_whole(path) as partial:  # whole or not at all, with workers racing
            partial.write_text(json.dumps(merged))
    except OSError:
        logging.getLogger(__name__).warning("event=regime_cache_not_written path=%s", path)


def detector_settings(detector: RegimeDetector) -> tuple:
    """What besides the bars a regime label depends on (RegimeDetector.label is a pure
    function of the bars before the session and these)."""
    return (
        detector.refit_every,
        detector.fit_window,
        detector.min_history,
        detector.trend_threshold,
        detector.confirm,
    )


def prefix_keys(panel: PricePanel) -> list[str]:
    """keys[i] names the bars before session i (symbols, dates, closes) by a hash chain:
    keys[i + 1] = H(keys[i], date_i, closes_i). A panel that extends another shares its
    keys for every session they have in common; a changed bar changes every later key."""
    chain = hashlib.blake2b(",".join(panel.symbols).encode(), digest_size=16)
    keys = [chain.hexdigest()]
    closes = np.ascontiguousarray(panel.close, dtype=float)
    for day, row in zip(panel.dates, closes, strict=True):
        chain = hashlib.blake2b(
            chain.digest() + day.isoformat().encode() + row.tobytes(), digest_size=16
        )
        keys.append(chain.hexdigest())
    return keys


def universe_sectors(symbols: Sequence[str]) -> dict[str, str]:
    """Sector tag of every symbol the universe knows (others have no sector limit)."""
    universe = load_universe()
    known = set(universe.symbols)
    return {s: universe.sector_of(s) for s in symbols if s in known}


class SessionDecision:
    """One backtest's decision state: its DecisionRules, the regime labels, the sleeve
    history; and its DecisionRecorder (only the sleeves are kept, in memory)."""

    def __init__(
        self, panel: PricePanel, strategies: Sequence[BaseStrategy], settings: BacktestSettings
    ) -> None:
        self.panel = panel
        self.dates = panel.dates
        self.symbols = tuple(panel.symbols)
        self.closes = panel.close
        self.limits = settings.risk
        self.live = settings.decision == "live"
        self.sectors = (
            dict(settings.sectors)
            if settings.sectors is not None
            else universe_sectors(self.symbols)
        )
        self.rules = DecisionRules(
            symbols=self.symbols,
            sectors=self.sectors,
            limits=settings.risk,
            allocation=AllocationSettings.from_portfolio(settings.portfolio, settings.gross_target),
            cov_window=settings.portfolio.cov_window,
            gross_target=settings.gross_target,
            method=settings.decision,
        )
        self._column = {s: j for j, s in enumerate(self.symbols)}
        # r_k = C[k+1] / C[k] - 1 for the whole panel, once: every session's window is a
        # slice of it (`returns_before`), element for element daily_returns' own division
        closes = np.asarray(panel.close)
        self._daily = closes[1:] / closes[:-1] - 1.0
        self._vols: np.ndarray | None = None  # realised_vol_matrix, for the signal decision
        self._sleeves: dict[int, dict[str, dict[str, float]]] = {}
        self._known: dict[str, tuple[list[int], list[float]]] = {}
        self._known_to = -1  # sleeve returns of sessions <= this are in _known
        # the regime only changes a decision when some strategy sits out some regime
        restricted = any(set(ALL_REGIMES) - set(s.regimes) for s in strategies)
        self.detector = RegimeDetector() if restricted and self.live else None
        self._labels: dict[str, str | None] | None = None
        self._settings: tuple | None = None
        self._keys: list[str] = []
        self._added: dict[str, str | None] = {}  # labels this run computed
        if self.detector is not None:
            settings = self._settings = detector_settings(self.detector)
            self._keys = prefix_keys(panel)
            with _REGIME_LOCK:
                if settings not in _REGIME_LABELS:
                    _REGIME_LABELS[settings] = _load_labels(settings)
                self._labels = _REGIME_LABELS[settings]

    def regime(self, history: PricePanel, day: date) -> str | None:
        """The live engine's regime label for `day` (None when no strategy filters on it).

        `history` is the panel's bars before `day`. The label depends only on those bars
        and the detector's settings, so it is remembered by `prefix_keys` for the whole
        process (and on disk with use_regime_cache): every backtest on the same bars, or
        on bars extending them, fits the Markov model and filters once per session.
        """
        if self.detector is None or self._labels is None:
            return None
        key = self._keys[len(history)]
        if key not in self._labels:
            reading = self.detector.label(history, day)
            label = reading.label if reading is not None else None
            with _REGIME_LOCK:
                self._labels[key] = self._added[key] = label
                if len(self._labels) > REGIME_ENTRIES:
                    _REGIME_LABELS[self._settings] = self._labels = _capped(self._labels)
        return self._labels[key]

    def save_regimes(self) -> None:
        """Merge the labels this run computed into the regime cache's file."""
        if self._settings is None or not self._added:
            return
        with _REGIME_LOCK:
            _store_labels(self._settings, self._added)
            self._added = {}

    def point(
        self,
        index: int,
        day: date,
        at: datetime,
        history: PricePanel,
        current: Mapping[str, float],
        equity: Decimal,
        peak: Decimal,
        tier: KillTier,
        holdings: Mapping[str, int] | None = None,
        marks: Mapping[str, Decimal] | None = None,
    ) -> DecisionPoint:
        """Session `index`'s DecisionPoint: the returns and volatilities of the bars
        before it come from the panel-wide arrays (`returns_before`, `vols_before`)."""
        return DecisionPoint(
            index=index,
            day=day,
            at=at,
            history=history,
            returns=self.returns_before(index) if self.live else _NO_RETURNS,
            current=current,
            equity=equity,
            peak=peak,
            tier=tier,
            holdings=holdings or {},
            marks=marks or {},
            vols=lambda: self.vols_before(index),
        )

    def decide(
        self,
        index: int,
        by_strategy: Mapping[str, Sequence[Signal]],
        current: Mapping[str, float],
        equity: Decimal,
        peak: Decimal,
        tier: KillTier,
    ) -> dict[str, float]:
        """Approved target weights for session `index` from given signal sets: the one
        decision (engine/decision.decide) without orders.

        `equity` and `peak` are the book's Decimal equity at the decision marks and the
        risk manager's peak; drawdown = (peak - equity) / peak, 1 when equity <= 0.
        """
        day = self.dates[index]
        stamp = datetime.combine(day, time(), tzinfo=UTC)
        point = self.point(index, day, stamp, self.history(index), current, equity, peak, tier)
        return decide(point, GivenSignals(by_strategy), self.rules, self).approved

    def history(self, index: int) -> PricePanel:
        """The bars before session `index`."""
        return self.panel.history_before(index)

    # ----- DecisionRecorder: a backtest keeps only the sleeves, in memory ---------------
    audits_checks = False  # a book with no names skips the checks (decision.check_risk)

    def signals(self, aggregation: Aggregation) -> None:
        """Not kept: a backtest stores no signal."""

    def admit(
        self, by_strategy: dict[str, list[Signal]], day: date, at: datetime
    ) -> dict[str, list[Signal]]:
        """Every signal: a backtest takes the bars as given (no data-quality block)."""
        return by_strategy

    def sleeves(self, index: int, sleeves: Mapping[str, Mapping[str, float]]) -> None:
        """Keep the proposed sleeves for the Kelly cap (sorted, as the live store's JSON)."""
        self._sleeves[index] = {k: dict(sorted(v.items())) for k, v in sleeves.items()}

    def checked(self, result: CheckResult, at: datetime) -> None:
        """Not kept: a backtest has no audit log."""

    def targets(
        self,
        approved: Mapping[str, float],
        signals: Sequence[Signal],
        cuts: Mapping[str, str],
        at: datetime,
    ) -> None:
        """Not sent: a backtest publishes nothing."""

    def vols_before(self, index: int) -> dict[str, float]:
        """realised_vols(closes[:index]): a row of the panel's realised_vol_matrix,
        computed once per run (equal bit for bit; a missing vol is NaN, which
        inverse_vol_weights leaves out as it does a missing one)."""
        if self._vols is None:
            self._vols = realised_vol_matrix(np.asarray(self.closes, dtype=float))
        return dict(zip(self.symbols, self._vols[index].tolist(), strict=True))

    def returns_before(self, index: int) -> np.ndarray:
        """daily_returns(closes[:index], risk_lookback), as a slice of the panel's returns.

        daily_returns divides the newest risk_lookback + 1 closes before session `index`
        (rows start .. index - 1); their returns are rows start .. index - 2 of `_daily`.
        """
        start = max(index - self.limits.risk_lookback - 1, 0)
        if index - start < 2:
            return np.zeros((0, self.closes.shape[1]))
        return self._daily[start : index - 1]

    def strategy_returns(self, index: int) -> dict[str, list[float]]:
        """RiskManager.strategy_returns over the in-memory sleeve history.

        Each sleeve's return (`sleeve_day_return`) is computed once, when its session
        enters the window, and kept per strategy in session order; the window is a slice.
        """
        low, high = sleeve_window(index, self.limits.risk_lookback)
        for i in range(max(self._known_to + 1, 0), high + 1):
            for strategy, weights in self._sleeves.get(i, {}).items():
                day = sleeve_day_return(weights, self.closes, i, self._column)
                if day is not None:
                    sessions, values = self._known.setdefault(strategy, ([], []))
                    sessions.append(i)
                    values.append(day)
        self._known_to = max(self._known_to, high)
        history: dict[str, list[float]] = {}
        for strategy, (sessions, values) in self._known.items():
            window = values[bisect_left(sessions, low) : bisect_right(sessions, high)]
            if window:
                history[strategy] = window
        return history


_NO_RETURNS = np.zeros((0, 0))  # the "signal" method measures no returns


@dataclass(frozen=True, slots=True)
class GivenSignals:
    """A SignalSource of signal sets already computed (the regime filter applied)."""

    by_strategy: Mapping[str, Sequence[Signal]]
    regime_label: str | None = None

    def regime(self, history: PricePanel, day: date) -> str | None:
        """The label the signal sets were filtered with."""
        return self.regime_label

    def aggregate(self, history: PricePanel, day: date, regime: str | None) -> Aggregation:
        """The given sets as the aggregator's output (every one active)."""
        return Aggregation(
            day,
            regime,
            tuple(
                StrategyStatus(name, ACTIVE, "", tuple(signals))
                for name, signals in self.by_strategy.items()
            ),
        )


@dataclass(frozen=True, slots=True)
class MatrixSignals:
    """A SignalSource over the vectorised runner's precomputed signal matrices: row
    `index` of each strategy's matrix (signals_from_row), regime-filtered as aggregate."""

    decision: SessionDecision
    matrices: Mapping[str, np.ndarray]
    strategies: Mapping[str, BaseStrategy]
    index: int

    def regime(self, history: PricePanel, day: date) -> str | None:
        """The backtest's cached regime label (None unless a strategy filters on it)."""
        if self.decision.detector is None:
            return None
        return self.decision.regime(history, day)

    def aggregate(self, history: PricePanel, day: date, regime: str | None) -> Aggregation:
        """Each strategy's signals of the row, or filtered out by the regime."""
        statuses = []
        symbols = self.decision.symbols
        for name, matrix in self.matrices.items():
            if not self.strategies[name].trades_in(regime):
                statuses.append(StrategyStatus(name, FILTERED, f"regime {regime}"))
                continue
            row = signals_from_row(name, symbols, matrix[self.index], day)
            statuses.append(StrategyStatus(name, ACTIVE, "", tuple(row)))
        return Aggregation(day, regime, tuple(statuses))


def signals_from_row(
    strategy: str, symbols: Sequence[str], row: np.ndarray, as_of: date
) -> list[Signal]:
    """A netted signal row (sign = direction, NaN/0 = none) as the allocator's input.

    The allocator only uses each name's net direction, so one signal per non-zero
    entry with the entry's sign carries the same information.
    """
    out = []
    for j, value in enumerate(row):
        if value != value or value == 0:
            continue
        side = SignalDirection.LONG if value > 0 else SignalDirection.SHORT
        out.append(Signal(symbols[j], side, 1.0, 1.0, strategy, as_of))
    return out
