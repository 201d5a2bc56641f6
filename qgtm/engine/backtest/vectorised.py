"""Vectorised runner: whole-history signal and ADV arrays, then one tight booking pass
with the same rules and roundings as the event-driven runner.

Signals come from `strategy.signal_matrix(panel)` when the strategy offers one (row i
uses bars before i only), otherwise from `generate` on each point-in-time history, so
every registered strategy runs here. The decision is the live engine's own function
(engine/decision.decide over each session's row of the matrices: regime filter,
allocate, run_checks; without its orders stage, which this pass books in integers
with the same rules); share rounding
(`target_quantity`, `skip_small_trade`), fill prices and commissions (`fill_price`,
`commission`) and the kill switch are the same pure functions the live engine uses;
positions and equity therefore match the event-driven runner exactly
(tests/engine/backtest/test_equivalence.py checks 1e-9 relative).
"""

from __future__ import annotations

import time as timer
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path

import numpy as np

from qgtm.core.backtest import BacktestError
from qgtm.core.enums import KillTier
from qgtm.core.processes import worker_pool
from qgtm.engine.backtest.costs import adv_matrix, mean_volumes
from qgtm.engine.backtest.decision import (
    MatrixSignals,
    SessionDecision,
    regime_cache_dir,
    use_regime_cache,
)
from qgtm.engine.backtest.event_driven import Progress
from qgtm.engine.backtest.result import (
    BacktestResult,
    BacktestSettings,
    Trade,
    money_matrix,
    price_units,
    session_window,
)
from qgtm.engine.data.store import PricePanel
from qgtm.engine.decision import check_risk, decide
from qgtm.engine.execution.algos import (
    INTRADAY_VOLUME_CURVE,
    Algo,
    participation_capped,
    schedule,
    select_algo,
)
from qgtm.engine.execution.brokers.paper import (
    SessionBar,
    bucket_prices,
    commission,
    fill_price,
)
from qgtm.engine.execution.oms import skip_small_trade, target_quantity
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.portfolio.aggregator import deduplicate
from qgtm.engine.portfolio.allocator import realised_vol_matrix
from qgtm.engine.risk.killswitch import book_close
from qgtm.engine.strategies.base import BaseStrategy


def signal_matrices(
    panel: PricePanel,
    strategies: Sequence[BaseStrategy],
    rows: range | None = None,
    context: StrategyContext | None = None,
) -> dict[str, np.ndarray]:
    """Per strategy: sum_k side_k * max(confidence_k, 1e-9) per session and symbol over its
    deduplicated signals (NaN: no signal); row i is what it says on session i from bars
    before i. `signal_matrix` is used when the strategy offers one; otherwise `generate`
    runs on each point-in-time history in `rows` (default: every session), with the
    macro/COT `context` (None: the demo fallback series)."""
    out: dict[str, np.ndarray] = {}
    column = {s: j for j, s in enumerate(panel.symbols)}
    rows = rows if rows is not None else range(1, len(panel))
    for strategy in strategies:
        if strategy.name in out:
            continue  # the aggregator runs a strategy configured twice once
        if hasattr(strategy, "signal_matrix"):
            out[strategy.name] = np.asarray(strategy.signal_matrix(panel), dtype=float)
            continue
        matrix = np.full(panel.close.shape, np.nan)
        for i in rows:
            history = panel.history_before(i)
            for signal in deduplicate(strategy.generate(history, panel.dates[i], context=context)):
                j = column[signal.symbol]
                base = 0.0 if np.isnan(matrix[i, j]) else matrix[i, j]
                matrix[i, j] = base + signal.side.sign * max(signal.confidence, 1e-9)
        out[strategy.name] = matrix
    return out


def netted(signals: Mapping[str, np.ndarray]) -> np.ndarray:
    """The strategies' signal matrices summed (NaN where none of them has a signal)."""
    stacked = np.stack(list(signals.values()))
    total = np.nansum(stacked, axis=0)
    return np.where(np.isfinite(stacked).any(axis=0), total, np.nan)


def target_matrix(netted: np.ndarray, vols: np.ndarray, gross_target: float) -> np.ndarray:
    """inverse_vol_weights on every row: sign_i * (1/sigma_i) / sum_active(1/sigma) * gross."""
    active = np.isfinite(netted) & (netted != 0) & (np.nan_to_num(vols) > 0)
    inverse = np.where(active, 1.0 / np.where(active, vols, 1.0), 0.0)
    total = np.cumsum(inverse, axis=1)[:, -1:]  # left-to-right, as the allocator adds
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = np.sign(netted) * (inverse / total) * gross_target
    return np.where(active, weights, np.nan)


def mean_volume_matrix(volume: np.ndarray, window: int, first: int, last: int) -> np.ndarray:
    """Row i: `mean_volumes` of the rows before i (what select_algo sees), for i in
    [first, last); each row is the same numpy reduction the live engine runs."""
    out = np.zeros(volume.shape, dtype=float)
    whole = np.asarray(volume, dtype=float)
    if window > 0 and np.all(whole == np.floor(whole)) and np.abs(whole).sum() < 2**53:
        # whole share counts: every partial sum is exact in any order, so the windowed
        # sums from one cumulative sum equal numpy's mean to the bit (one division)
        csum = np.vstack([np.zeros((1, volume.shape[1])), np.cumsum(whole, axis=0)])
        for_rows = np.arange(first, last)
        low = np.maximum(for_rows - window, 0)
        out[first:last] = (csum[for_rows] - csum[low]) / (for_rows - low)[:, None]
        return out
    for i in range(first, last):
        out[i] = mean_volumes(volume[:i], window)
    return out


def run_vectorised(
    panel: PricePanel,
    strategies: Sequence[BaseStrategy],
    settings: BacktestSettings,
    progress: Progress | None = None,
    signals: Mapping[str, np.ndarray] | None = None,
    context: StrategyContext | None = None,
    compiled: bool = True,
) -> BacktestResult:
    """The event-driven backtest's positions and equity from precomputed arrays.

    `signals` (strategy name -> sessions x symbols netted signal, NaN = none) skips the
    signal step, which is how a parameter sweep reuses this pass; `context` is the
    strategies' macro/COT input (None: the demo fallback), as in run_event_driven.
    With decision="signal" the booking pass runs compiled (`kernel`) when it can book the
    settings exactly; `compiled=False` forces the Python pass (the kernel's reference).
    """
    warmup = max((s.warmup for s in strategies), default=0)
    first, last = session_window(panel, settings, warmup)
    if signals is None:
        signals = signal_matrices(panel, strategies, range(first, last), context)
    regimes = {s.name: s for s in strategies}
    decision = SessionDecision(panel, strategies, settings)
    volumes = mean_volume_matrix(panel.volume, settings.costs.adv_window, first, last)
    quick = None
    declined: dict[str, str] = {}  # why the compiled pass handed the book back, if it did
    if not decision.live:
        quick = target_matrix(
            netted(signals), realised_vol_matrix(panel.close), settings.gross_target
        )
        if compiled:
            booked = _compiled(panel, settings, first, last, volumes, [quick])[0]
            if isinstance(booked, _Booked):
                if progress is not None:
                    progress(last - first, last - first)
                return booked.make()
            declined["booking"] = booked
    opens, closes = money_matrix(panel.open), money_matrix(panel.close)
    highs, lows = money_matrix(panel.high), money_matrix(panel.low)
    adv = adv_matrix(panel.volume)
    cost_bps = settings.costs.fill_cost_bps()
    symbols = panel.symbols
    order = sorted(range(len(symbols)), key=lambda j: symbols[j])
    costs = settings.costs
    cash = settings.initial_cash
    held = [0] * len(symbols)
    tier = KillTier.NORMAL
    prev_equity = peak = settings.initial_cash
    pending: list[tuple[int, int, Decimal, Algo]] = []  # (symbol, signed qty, impact, algo)
    n = last - first
    equity_out, cash_out = np.zeros(n), np.zeros(n)
    positions = np.zeros((n, len(symbols)), dtype=np.int64)
    trades: list[Trade] = []
    tiers: list[str] = []
    for row, i in enumerate(range(first, last)):
        day = panel.dates[i]
        for j, qty, impact, algo in pending:
            sign = 1 if qty > 0 else -1
            if algo is Algo.MARKET:
                children = [(abs(qty), opens[i][j])]
            else:  # PaperBroker._work_algo: the schedule, capped, along the bar's path
                bar = SessionBar(
                    opens[i][j], highs[i][j], lows[i][j], closes[i][j], float(panel.volume[i, j])
                )
                executed, _ = participation_capped(
                    schedule(algo, abs(qty)),
                    [w * bar.volume for w in INTRADAY_VOLUME_CURVE],
                    costs.participation_cap,
                )
                children = [(q, p) for q, p in zip(executed, bucket_prices(bar), strict=True) if q]
            for size, reference in children:
                price = fill_price(reference, sign, cost_bps)
                fee = commission(costs.commission_per_share, size)
                cash -= price * (sign * size) + fee
                cash -= costs.impact_charge(size, price, impact)
                held[j] += sign * size
                trades.append(Trade(day, symbols[j], sign * size, price, fee))
        pending = []
        marks = closes[i - 1]
        equity = cash + sum((marks[j] * q for j, q in enumerate(held) if q), Decimal(0))
        current = (
            {symbols[j]: float(marks[j] * q / equity) for j, q in enumerate(held) if q}
            if equity > 0
            else {}
        )
        stamp = datetime.combine(day, time(), tzinfo=UTC)
        history = panel.history_before(i)
        if quick is not None:  # decision="signal": the whole target matrix is known
            row_targets = quick[i] if tier < KillTier.FLATTEN else ()
            wanted = {symbols[j]: float(w) for j, w in enumerate(row_targets) if w == w}
            point = decision.point(i, day, stamp, history, current, equity, peak, tier)
            check = check_risk(point, wanted, {}, decision.rules, decision)
            approved = check.approved if check is not None else {}
        else:  # the one decision function, on this session's row of the signal matrices
            point = decision.point(i, day, stamp, history, current, equity, peak, tier)
            source = MatrixSignals(decision, signals, regimes, i)
            approved = decide(point, source, decision.rules, decision).approved
        for j in order:
            symbol = symbols[j]
            if symbol not in approved and not held[j]:
                continue
            target_qty = target_quantity(approved.get(symbol, 0.0), equity, marks[j])
            delta = target_qty - held[j]
            if skip_small_trade(target_qty, delta, marks[j], settings.min_trade_value):
                continue
            algo = select_algo(
                abs(delta), float(volumes[i, j]), costs.vwap_adv_fraction, costs.twap_adv_fraction
            )
            pending.append((j, delta, costs.impact_bps(abs(delta), int(adv[i, j])), algo))
        marks = closes[i]
        short_value = sum((-marks[j] * q for j, q in enumerate(held) if q < 0), Decimal(0))
        cash -= costs.borrow_charge(short_value)
        equity = cash + sum((marks[j] * q for j, q in enumerate(held) if q), Decimal(0))
        peak = max(peak, equity)
        if settings.kill_switch:
            close = book_close(tier, peak, prev_equity, equity, settings.risk, settings.kill_reset)
            if close.flatten:
                pending = [(j, -held[j], Decimal(0), Algo.MARKET) for j in order if held[j]]
            tier = close.tier
        prev_equity = equity
        equity_out[row] = float(equity)
        cash_out[row] = float(cash)
        positions[row] = held
        tiers.append(tier.name)
        if progress is not None and (row % 64 == 0 or row == n - 1):
            progress(row + 1, n)
    decision.save_regimes()
    return BacktestResult.over_window(
        panel,
        (first, last),
        settings,
        "vectorised",
        equity=equity_out,
        cash=cash_out,
        positions=positions,
        trades=trades,
        kill_tiers=tiers,
        **declined,
    )


@dataclass(slots=True)
class _Booked:
    """One compiled trial: its equity and holdings now, its full result on demand."""

    equity: np.ndarray
    positions: np.ndarray
    make: Callable[[], BacktestResult]


def _compiled(
    panel: PricePanel,
    settings: BacktestSettings,
    first: int,
    last: int,
    volumes: np.ndarray,
    targets: Sequence[np.ndarray],
) -> list[_Booked | str]:
    """Book each target matrix with the compiled pass; a string says why a trial was not
    (the caller books it in Python)."""
    opens, closes = price_units(panel.open), price_units(panel.close)
    highs, lows = price_units(panel.high), price_units(panel.low)
    try:
        from qgtm.engine.backtest import kernel  # numba loads on the first compiled run
    except ImportError as exc:  # a platform without numba wheels: the Python pass
        return [f"booked in Python: the compiled pass is unavailable ({exc})"] * len(targets)

    top = max((int(a.max()) for a in (opens, highs, lows, closes) if a.size), default=0)
    why = kernel.eligible(settings, top)
    if why is not None:
        return [why] * len(targets)
    symbols = panel.symbols
    order = np.array(sorted(range(len(symbols)), key=lambda j: symbols[j]), dtype=np.int64)
    inputs = kernel.kernel_inputs(
        opens[:, order],
        highs[:, order],
        lows[:, order],
        closes[:, order],
        np.asarray(panel.volume, dtype=float)[:, order],
        volumes[:, order],
        first,
        last,
        settings,
    )
    sorted_symbols = tuple(symbols[j] for j in order)
    out: list[_Booked | str] = []
    for wanted in targets:
        book = kernel.book_trial(inputs, wanted[:, order])
        if book.status != kernel.Status.OK:
            out.append(f"booked in Python: {book.status.name.lower().replace('_', ' ')}")
            continue
        positions = np.empty_like(book.positions)
        positions[:, order] = book.positions
        equity = book.equity / kernel.UNITS

        def make(
            book: kernel.TrialBook = book, positions: np.ndarray = positions, equity=equity
        ) -> BacktestResult:
            return BacktestResult.over_window(
                panel,
                (first, last),
                settings,
                "vectorised",
                equity=equity,
                cash=book.cash / kernel.UNITS,
                positions=positions,
                trades=kernel.trades_of(book, panel.dates, sorted_symbols, first),
                kill_tiers=[KillTier(int(t)).name for t in book.tiers],
                booking="compiled",
            )

        out.append(_Booked(equity, positions, make))
    return out


@dataclass(slots=True)
class SweepResult:
    """A parameter sweep on one window: every trial's equity and holdings, and any
    trial's full BacktestResult on demand (`result`)."""

    dates: tuple[date, ...]
    symbols: tuple[str, ...]
    equity: np.ndarray  # trials x sessions
    positions: np.ndarray  # trials x sessions x symbols
    booking: list[str]  # per trial: "compiled" or why it was booked in Python
    initial_cash: float
    _makers: list[Callable[[], BacktestResult]] = field(repr=False)
    processes: int = 1  # how many processes computed the trials (1: this one)

    @property
    def returns(self) -> np.ndarray:
        """Simple daily returns per trial (trials x sessions), as BacktestResult.returns."""
        prev = np.concatenate(
            [np.full((len(self.equity), 1), self.initial_cash), self.equity[:, :-1]], axis=1
        )
        return self.equity / prev - 1.0

    def result(self, trial: int) -> BacktestResult:
        """The full result (trades included) of one trial."""
        return self._makers[trial]()


@dataclass(frozen=True, slots=True)
class _SweepJob:
    """What every trial of a sweep shares; sent once to each worker process."""

    panel: PricePanel
    trials: tuple[Sequence[BaseStrategy], ...]
    settings: BacktestSettings  # with start = the common first session
    first: int
    last: int
    context: StrategyContext | None
    signals: Sequence[Mapping[str, np.ndarray]] | None  # given per trial, or None
    regime_cache: Path | None = None  # the caller's use_regime_cache, for workers

    def run(self, k: int) -> object:
        """Trial k's signals (decision="signal") or its whole Python run (live)."""
        given = self.signals[k] if self.signals is not None else None
        if self.settings.decision == "signal":
            if given is not None:
                return given
            rows = range(self.first, self.last)
            return signal_matrices(self.panel, self.trials[k], rows, self.context)
        return self.run_python(k, given)

    def run_python(self, k: int, given: Mapping[str, np.ndarray] | None) -> BacktestResult:
        """Trial k through the Python pass of run_vectorised."""
        return run_vectorised(
            self.panel,
            self.trials[k],
            self.settings,
            signals=given,
            context=self.context,
            compiled=False,
        )


_SWEEP_JOB: list[_SweepJob] = []  # a sweep worker's job (set by its initializer)
SPAWN_SECONDS = 2.0
"""A spawned sweep worker's start-up (imports), measured at 1.8-2.0 s on 2 cores."""


def _sweep_init(job: _SweepJob) -> None:
    _SWEEP_JOB[:] = [job]
    use_regime_cache(job.regime_cache)


def _sweep_trial(k: int) -> object:
    return _SWEEP_JOB[0].run(k)


def run_sweep(
    panel: PricePanel,
    trials: Sequence[Sequence[BaseStrategy]],
    settings: BacktestSettings,
    signals: Sequence[Mapping[str, np.ndarray]] | None = None,
    context: StrategyContext | None = None,
    progress: Progress | None = None,
    workers: int = 1,
) -> SweepResult:
    """Every trial (a strategy set) through the vectorised runner on one window: all
    start on the session after the longest warm-up of any trial.

    With decision="signal" the trials share the volatility and volume arrays and are
    booked by the compiled pass (a trial it cannot book exactly runs in Python, and
    `booking` says so); with the live decision each trial is a run_vectorised.
    `signals`, per trial, skips the signal step (e.g. `sma.crossover_signals`).
    `workers` > 1 computes trials in that many spawned processes when the per-trial
    work is slow enough to pay for them (the live decision, or signals from `generate`
    session by session; see per_trial); the results are the same, in trial order.
    """
    if not trials:
        raise BacktestError("a sweep needs at least one trial")
    warmup = max((s.warmup for trial in trials for s in trial), default=0)
    first, last = session_window(panel, settings, warmup)
    used = [1]  # processes that computed trials
    common = replace(settings, start=panel.dates[first])
    job = _SweepJob(panel, tuple(trials), common, first, last, context, signals, regime_cache_dir())
    generic = signals is None and any(
        not hasattr(s, "signal_matrix") for trial in trials for s in trial
    )
    parallel = workers > 1 and len(trials) > 1 and (settings.decision == "live" or generic)

    def per_trial() -> Iterator[object]:
        """Each trial's signals (signal decision) or result (live), in trial order.

        The first trial runs here and is timed; the rest go to worker processes only
        when the time they would save beats a worker's start-up (SPAWN_SECONDS: a spawned
        interpreter imports numpy, scipy, statsmodels and the engine before it works).
        """
        started = timer.perf_counter()
        yield job.run(0)
        rest = range(1, len(trials))
        pool_size = min(workers, len(rest))
        serial_estimate = (timer.perf_counter() - started) * len(rest)
        saved = serial_estimate * (1 - 1 / pool_size) if parallel and pool_size > 1 else 0.0
        if saved <= 2 * SPAWN_SECONDS:
            for k in rest:
                yield job.run(k)
            return
        used[0] = 1 + pool_size
        with worker_pool(pool_size, _sweep_init, (job,)) as pool:
            yield from pool.imap(_sweep_trial, rest)

    # progress: one step per trial's signals or run (the slow parts) and, with the quick
    # decision, one per trial's booking (instant when compiled, a Python pass when the
    # kernel hands the trial back); the total is known up front, so the bar only advances
    steps = len(trials) * (2 if settings.decision == "signal" else 1)
    done = 0

    def advance() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, steps)

    results: dict[int, BacktestResult] = {}
    booked: list[_Booked | str] = ["live decision"] * len(trials)
    if settings.decision == "signal":
        volumes = mean_volume_matrix(panel.volume, settings.costs.adv_window, first, last)
        vols = realised_vol_matrix(panel.close)
        computed: list[Mapping[str, np.ndarray]] = []
        targets: list[np.ndarray] = []
        for out in per_trial():
            computed.append(out)  # type: ignore[arg-type]
            targets.append(target_matrix(netted(computed[-1]), vols, settings.gross_target))
            advance()
        booked = _compiled(panel, settings, first, last, volumes, targets)
        for k, entry in enumerate(booked):
            if isinstance(entry, str):
                results[k] = job.run_python(k, computed[k])
            advance()
    else:
        for k, out in enumerate(per_trial()):
            results[k] = out  # type: ignore[assignment]
            advance()
    equity, positions, booking, makers = [], [], [], []
    for k, entry in enumerate(booked):
        if isinstance(entry, str):
            result = results[k]
            equity.append(result.equity)
            positions.append(result.positions)
            booking.append(entry)
            makers.append(lambda result=result: result)
        else:
            equity.append(entry.equity)
            positions.append(entry.positions)
            booking.append("compiled")
            makers.append(entry.make)
    return SweepResult(
        dates=panel.dates[first:last],
        symbols=panel.symbols,
        equity=np.array(equity),
        positions=np.array(positions),
        booking=booking,
        initial_cash=float(settings.initial_cash),
        _makers=makers,
        processes=used[0],
    )
