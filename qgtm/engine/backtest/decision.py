"""The live engine's 15:30 decision, as both backtest runners take it.

`TradingEngine._rebalance` decides session t from bars strictly before t:
  regime (RegimeDetector.label) -> aggregate (regime filter, dedup) -> allocate
  (AllocationSettings from [portfolio] + engine.gross_target; returns of the last
  cov_window sessions of the risk_lookback window; current weights; drawdown from the
  peak) -> RiskContext (sectors, returns, sleeves, each strategy's paper sleeve returns
  for the Kelly cap) -> run_checks (kill tier, position, sector, correlation, gross, net,
  vol target, Kelly, CVaR, final guard).
`SessionDecision` calls exactly those functions with exactly those inputs; it only keeps
in memory what the live engine keeps in state.sqlite (the proposed sleeves per session).

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
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np

from qgtm.core.enums import KillTier, SignalDirection
from qgtm.core.paths import replaced_whole
from qgtm.core.types import Signal
from qgtm.core.universe import load_universe
from qgtm.engine.backtest.result import BacktestSettings
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.regime import RegimeDetector
from qgtm.engine.portfolio.allocator import (
    AllocationSettings,
    allocate,
    inverse_vol_weights,
    realised_vol_matrix,
)
from qgtm.engine.risk.checks import RiskContext, run_checks, sleeve_day_return, sleeve_window
from qgtm.engine.risk.manager import check_targets
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
    """One backtest's decision state: allocation settings, sectors, sleeve history."""

    def __init__(
        self, panel: PricePanel, strategies: Sequence[BaseStrategy], settings: BacktestSettings
    ) -> None:
        self.symbols = tuple(panel.symbols)
        self.closes = panel.close
        self.limits = settings.risk
        self.live = settings.decision == "live"
        self.gross_target = settings.gross_target
        self.cov_window = settings.portfolio.cov_window
        self.allocation = AllocationSettings.from_portfolio(
            settings.portfolio, settings.gross_target
        )
        self.sectors = (
            dict(settings.sectors)
            if settings.sectors is not None
            else universe_sectors(self.symbols)
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

    def decide(
        self,
        index: int,
        by_strategy: Mapping[str, Sequence[Signal]],
        current: Mapping[str, float],
        equity: Decimal,
        peak: Decimal,
        tier: KillTier,
    ) -> dict[str, float]:
        """Approved target weights for session `index` (allocate, then every risk check).

        `equity` and `peak` are the book's Decimal equity at the decision marks and the
        risk manager's peak; drawdown = (peak - equity) / peak, 1 when equity <= 0.
        With decision="signal": inverse_vol_weights of every signal, then check_targets.

        A session with no target and nothing held (most sessions of a strategy that is
        often flat) skips the checks: run_checks only ever changes the weights of names
        targeted or held, so it would approve {} whatever it measured (a property test in
        tests/engine/risk/test_checks.py holds it to that); the live engine still runs
        them, for the audit log's outcomes.
        """
        if not self.live:
            targets: dict[str, float] = {}
            if tier < KillTier.FLATTEN:
                signals = [s for group in by_strategy.values() for s in group]
                targets = inverse_vol_weights(signals, self.vols_before(index), self.gross_target)
            return self.check_signal_targets(targets, current, tier)
        returns = self.returns_before(index)
        targets = {}
        sleeves: dict[str, dict[str, float]] = {}
        if tier < KillTier.FLATTEN:
            drawdown = float((peak - equity) / peak) if equity > 0 else 1.0
            allocation = allocate(
                by_strategy,
                returns[-self.cov_window :],
                self.symbols,
                current,
                drawdown,
                self.allocation,
            )
            targets, sleeves = allocation.targets, allocation.sleeves
            self._sleeves[index] = {k: dict(sorted(v.items())) for k, v in sleeves.items()}
        if not targets and not current:
            return {}  # run_checks approves no weight for a book with no names (see below)
        context = RiskContext(
            symbols=self.symbols,
            sectors=self.sectors,
            returns=returns,
            sleeves=sleeves,
            strategy_returns=self.strategy_returns(index) if sleeves else {},
        )
        return run_checks(targets, current, tier, self.limits, context).approved

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

    def check_signal_targets(
        self, targets: Mapping[str, float], current: Mapping[str, float], tier: KillTier
    ) -> dict[str, float]:
        """decision="signal": the context-free checks (kill tier, position, gross, net)."""
        if not targets and not current:
            return {}  # run_checks approves no weight for a book with no names (see decide)
        approved, _ = check_targets(targets, current, tier, self.limits)
        return approved

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
