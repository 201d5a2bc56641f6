"""Backtest requests as the CLI and the Research screen make them: parse, run, validate,
persist. The numeric work lives in the runners, stats and validation modules."""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from qgtm.core.backtest import BACKTEST_FLAGS, BacktestError, parse_param, parse_sweep
from qgtm.core.config import KILL_RESETS, Config
from qgtm.core.paths import replaced_whole
from qgtm.engine.backtest.costs import CostModel
from qgtm.engine.backtest.event_driven import Progress, run_event_driven
from qgtm.engine.backtest.result import BacktestResult, BacktestSettings
from qgtm.engine.backtest.sma import SmaCrossover
from qgtm.engine.backtest.stats import (
    EQUAL_WEIGHT,
    Report,
    benchmark_returns,
    cagr,
    check_benchmark,
    drawdown,
    report,
    round_trips,
    sharpe_ratio,
)
from qgtm.engine.backtest.validation import (
    cross_validate,
    deflated_sharpe_ratio,
    min_track_record_length,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe_moments,
    sharpe_variance,
    short_window_warning,
    walk_forward,
)
from qgtm.engine.backtest.vectorised import run_sweep, run_vectorised
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import StrategyContext, demo_context
from qgtm.engine.features.pit_features import AUX_FEATURES
from qgtm.engine.strategies.base import BaseStrategy
from qgtm.engine.strategies.registry import STRATEGIES, UnknownStrategyError, create

RUNNERS = ("event", "vector")
ARTIFACTS = "artifacts"


def strategy_names() -> list[str]:
    """Every registered strategy (plus the runners' reference crossover)."""
    return sorted({*STRATEGIES, SmaCrossover.name})


def make_strategy(name: str, params: Mapping[str, float] | None = None) -> BaseStrategy:
    """The registered strategy `name` with overrides; BacktestError on any mistake."""
    try:
        if name == SmaCrossover.name and name not in STRATEGIES:
            return SmaCrossover(**(params or {}))
        return create(name, **(params or {}))
    except UnknownStrategyError:
        raise BacktestError(
            f"unknown strategy {name!r}; known: {', '.join(strategy_names())}"
        ) from None
    except (ValueError, TypeError) as exc:
        raise BacktestError(str(exc)) from None


def parse_date(text: str | None, flag: str) -> date | None:
    """ISO date or None; BacktestError naming the flag otherwise."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BacktestError(f"bad {flag} {text!r}: want YYYY-MM-DD") from None


def with_backtest_flags(config: Config, flags: Mapping[str, Any]) -> Config:
    """`config` with `flags` (--impact BPS, --borrow BPS, --kill-reset hold|daily; a value
    of None: not given) in its [backtest] section. BacktestError naming a bad one."""
    values: dict[str, Any] = {}
    for flag, text in flags.items():
        if flag not in BACKTEST_FLAGS:
            raise BacktestError(f"unknown option {flag}: want {', '.join(BACKTEST_FLAGS)}")
        if text is None:
            continue
        if flag == "--kill-reset":
            if text not in KILL_RESETS:
                raise BacktestError(f"bad {flag} {text!r}: want {' or '.join(KILL_RESETS)}")
            values[BACKTEST_FLAGS[flag]] = text
            continue
        try:
            value = float(text)
        except (TypeError, ValueError):
            value = math.nan
        if not (math.isfinite(value) and value >= 0):
            raise BacktestError(f"bad {flag} {text!r}: want bps, a number >= 0")
        values[BACKTEST_FLAGS[flag]] = value
    return replace(config, backtest=replace(config.backtest, **values)) if values else config


def settings_from_config(config: Config, start: date | None, end: date | None) -> BacktestSettings:
    """The live book's cash, gross target, allocation ([portfolio]), risk limits and
    paper-broker costs (slippage, spread, commission): what the live engine trades with;
    plus [backtest]: the impact and borrow costs only backtests charge, and how kill
    tiers step down without an operator."""
    return BacktestSettings(
        initial_cash=Decimal(config.engine.initial_cash),
        gross_target=config.engine.gross_target,
        risk=config.risk,
        min_trade_value=Decimal(config.execution.min_trade_value),
        costs=CostModel.from_execution(
            config.execution,
            impact_bps_at_full_adv=config.backtest.impact_bps_at_full_adv,
            borrow_bps_annual=config.backtest.borrow_bps_annual,
        ),
        kill_reset=config.backtest.kill_reset,
        start=start,
        end=end,
        portfolio=config.portfolio,
    )


@functools.cache
def code_hash() -> str:
    """blake2b over every .py file of the qgtm package (relative path and bytes), 16 hex
    digits: names the engine code a run was made with, so a rerun that differs can tell
    a changed engine from a non-reproducible one."""
    root = Path(__file__).resolve().parents[2]  # the qgtm package
    digest = hashlib.blake2b(digest_size=8)
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def data_hash(panel: PricePanel) -> str:
    """sha256 over symbols, dates and every OHLCV array: names the exact bars used."""
    digest = hashlib.sha256()
    digest.update(",".join(panel.symbols).encode())
    digest.update(",".join(d.isoformat() for d in panel.dates).encode())
    for values in (panel.open, panel.high, panel.low, panel.close, panel.volume):
        digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return digest.hexdigest()


@dataclass(slots=True)
class RunOutcome:
    """One backtest with its report, validation and where it was saved."""

    strategy: str
    params: dict[str, float]
    runner: str
    result: BacktestResult
    report: Report
    validation: dict[str, Any] = field(default_factory=dict)
    sweep: list[dict[str, Any]] = field(default_factory=list)
    artifact: Path | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: config, data hash, report, validation, sweep, artifact path."""
        return {
            "strategy": self.strategy,
            "params": self.params,
            "runner": self.runner,
            "config": self.config,
            "start": self.result.dates[0].isoformat(),
            "end": self.result.dates[-1].isoformat(),
            "final_equity": float(self.result.equity[-1]),
            "trades": len(self.result.trades),
            "report": self.report.as_dict(),
            "validation": self.validation,
            "sweep": self.sweep,
            "artifact": str(self.artifact) if self.artifact else None,
            "warnings": window_warnings(self.report.sessions),
        }


def window_warnings(sessions: int) -> list[str]:
    """What a reader of a run's statistics must know about its window (none, or the
    short-window warning)."""
    warning = short_window_warning(sessions)
    return [warning] if warning else []


def _run(
    runner: str,
    panel: PricePanel,
    strategy: BaseStrategy,
    settings: BacktestSettings,
    progress: Progress | None,
    context: StrategyContext | None = None,
) -> BacktestResult:
    if runner not in RUNNERS:
        raise BacktestError(f"unknown runner {runner!r}; use one of {', '.join(RUNNERS)}")
    if runner == "event":
        return run_event_driven(panel, [strategy], settings, progress, context)
    return run_vectorised(panel, [strategy], settings, progress, context=context)


def strategy_inputs(strategy: BaseStrategy, context: StrategyContext | None) -> dict[str, str]:
    """Each macro/COT input of `strategy` -> where the backtest took it from: the
    provider ("FRED", "CFTC") when the market store holds it, else "demo fallback"."""
    ctx = demo_context() if context is None else context
    return {f: ctx.source_of(f) for f in strategy.features if f in AUX_FEATURES}


def _sharpe_validation(returns: np.ndarray, n_trials: int = 1, trials_var: float = 0.0) -> dict:
    moments = sharpe_moments(returns)
    out = {
        "sharpe_daily": moments.sharpe,
        "skew": moments.skew,
        "kurtosis": moments.kurtosis,
        "observations": moments.n,
        "psr_vs_zero": probabilistic_sharpe_ratio(
            moments.sharpe, moments.n, moments.skew, moments.kurtosis
        )
        if moments.n > 1
        else 0.0,
        "min_track_record_sessions": min_track_record_length(
            moments.sharpe, moments.skew, moments.kurtosis
        ),
    }
    if n_trials > 1 and moments.n > 1:
        out["deflated_sharpe"] = deflated_sharpe_ratio(
            moments.sharpe, moments.n, moments.skew, moments.kurtosis, n_trials, trials_var
        )
        out["trials"] = n_trials
    return out


def cv_embargo(sessions: int) -> int:
    """The default embargo: 1% of the sessions, rounded up (AFML 7.4.2)."""
    return math.ceil(0.01 * sessions)


def _sweep_row(
    key: str,
    value: float,
    sharpe: float,
    equity: np.ndarray,
    settings: BacktestSettings,
    booking: str,
) -> dict[str, Any]:
    """One trial of a sweep: its value (as the strategy holds it), Sharpe, CAGR, max
    drawdown over the common window, and how it was booked."""
    initial = float(settings.initial_cash)
    return {
        key: value,
        "sharpe": sharpe,
        "cagr": cagr(initial, float(equity[-1]), len(equity)),
        "max_drawdown": drawdown(equity, initial).max_drawdown,
        "booking": booking,
    }


def run_backtest(
    panel: PricePanel,
    strategy_name: str,
    settings: BacktestSettings,
    params: Mapping[str, float] | None = None,
    runner: str = "event",
    sweep: tuple[str, Sequence[float]] | None = None,
    walk: tuple[int, int, bool] | None = None,
    sector_of: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    context: StrategyContext | None = None,
    workers: int = 1,
    cv: tuple[int, int | None] | None = None,
    benchmark: str | None = EQUAL_WEIGHT,
) -> RunOutcome:
    """One backtest, or a sweep (vectorised) whose best in-sample value is reported with
    the deflated Sharpe over all trials, PBO by CSCV and, if asked, a walk-forward.
    A sweep computes its trials in `workers` processes (see run_sweep). `cv` = (k,
    embargo) scores the sweep's selection by purged k-fold cross-validation (embargo
    None: 1% of the sessions, AFML's suggestion). `benchmark` (EQUAL_WEIGHT, a symbol,
    or None) adds beta, alpha, information ratio and more to the report.

    `context`: the macro/COT inputs the live engine would give the strategies (see
    `market.load_market`); None runs them on the demo fallback series. The artifact's
    config names the source of each input ("inputs")."""
    params = dict(params or {})
    strategy = make_strategy(strategy_name, params)
    reason = strategy.cannot_trade(panel.symbols)
    if reason is not None:  # it would run to the end with no trade at all
        raise BacktestError(reason)
    if benchmark is not None:
        check_benchmark(panel, benchmark)

    def bench(result: BacktestResult) -> tuple[str, np.ndarray] | None:
        if benchmark is None:
            return None
        return benchmark, benchmark_returns(panel, result.dates, benchmark)

    config = {
        "strategy": strategy_name,
        "params": params,
        "runner": runner,
        "settings": settings.as_dict(),
        "data_hash": data_hash(panel),
        "data_until": panel.dates[-1].isoformat() if len(panel) else None,
        "code": code_hash(),
        "benchmark": benchmark,
        "inputs": strategy_inputs(strategy, context),
    }
    if sweep is None and (walk is not None or cv is not None):
        raise BacktestError("walk-forward and cross-validation need a sweep to choose from")
    if sweep is None:
        result = _run(runner, panel, strategy, settings, progress, context)
        outcome = RunOutcome(
            strategy_name, strategy.params, runner, result, report(result, sector_of, bench(result))
        )
        outcome.validation = _sharpe_validation(result.returns)
        outcome.config = config
        return outcome
    key, values = sweep
    strategies = [make_strategy(strategy_name, {**params, key: v}) for v in values]
    # one window for all trials (after the longest warm-up), so returns line up
    swept = run_sweep(
        panel,
        [[s] for s in strategies],
        settings,
        context=context,
        progress=progress,
        workers=workers,
    )
    matrix = swept.returns.T
    sharpes = [sharpe_ratio(matrix[:, k]) for k in range(matrix.shape[1])]
    best = int(np.argmax(sharpes))
    daily = [s / np.sqrt(252) for s in sharpes]
    chosen = swept.result(best)
    outcome = RunOutcome(
        strategy_name,
        strategies[best].params,
        "vector",
        chosen,
        report(chosen, sector_of, bench(chosen)),
    )
    outcome.sweep = [
        _sweep_row(key, strategy.params[key], sharpe, swept.equity[k], settings, booking)
        for k, (strategy, sharpe, booking) in enumerate(
            zip(strategies, sharpes, swept.booking, strict=True)
        )
    ]
    outcome.validation = _sharpe_validation(chosen.returns, len(values), sharpe_variance(daily))
    if len(values) >= 2 and matrix.shape[0] >= 16:
        outcome.validation["pbo"] = probability_of_backtest_overfitting(matrix, 16).pbo
    if walk is not None:
        train, test, anchored = walk
        try:
            wf = walk_forward(matrix, train, test, anchored)
        except ValueError as exc:
            raise BacktestError(str(exc)) from None
        outcome.validation["walk_forward"] = {
            "train": train,
            "test": test,
            "anchored": anchored,
            "chosen": [strategies[k].params[key] for k in wf.chosen],
            "oos_sharpe": sharpe_ratio(wf.oos_returns),
            **{f"oos_{k}": v for k, v in _sharpe_validation(wf.oos_returns).items()},
        }
    if cv is not None:
        k, embargo = cv
        if embargo is None:
            embargo = cv_embargo(matrix.shape[0])
        cv = (k, embargo)
        try:
            folds = cross_validate(matrix, k, embargo)
        except ValueError as exc:
            raise BacktestError(f"--cv {k}:{embargo}: {exc}") from None
        outcome.validation["cross_validation"] = {
            "folds": k,
            "embargo": embargo,
            "chosen": [strategies[j].params[key] for j in folds.chosen],
            "oos_sharpe": sharpe_ratio(folds.oos_returns),
            "worst_fold_sharpe": min(folds.fold_sharpes) * np.sqrt(252),
            **{f"oos_{name}": v for name, v in _sharpe_validation(folds.oos_returns).items()},
        }
    config["runner"] = "vector"
    config["sweep"] = {key: list(values), "processes": swept.processes}
    if walk is not None:
        config["walk_forward"] = list(walk)
    if cv is not None:
        config["cv"] = list(cv)
    outcome.config = config
    return outcome


def save_artifacts(outcome: RunOutcome, data_dir: Path) -> Path:
    """Write equity, positions, trades, round trips and a summary as Parquet under
    <data-dir>/artifacts/backtests/<run id>/; the id hashes the config (with the data and
    code hashes), so the same run of the same engine lands in the same place. Each file
    replaces its old self in one rename, so a crash or a second writer of the same run
    never leaves half a file."""
    blob = json.dumps(outcome.config, sort_keys=True, default=str)
    run_id = f"{outcome.strategy}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"
    folder = data_dir / ARTIFACTS / "backtests" / run_id
    result = outcome.result
    frames: dict[str, pl.DataFrame] = {}
    frames["equity"] = pl.DataFrame(
        {
            "date": result.dates,
            "equity": result.equity,
            "cash": result.cash,
            "return": result.returns,
            "kill_tier": result.kill_tiers,
        }
    )
    frames["positions"] = pl.DataFrame(
        {"date": result.dates, **{s: result.positions[:, j] for j, s in enumerate(result.symbols)}}
    )
    frames["trades"] = pl.DataFrame(
        {
            "date": [t.day for t in result.trades],
            "symbol": [t.symbol for t in result.trades],
            "quantity": [t.quantity for t in result.trades],
            "price": [str(t.price) for t in result.trades],
            "commission": [str(t.commission) for t in result.trades],
        },
        schema={
            "date": pl.Date,
            "symbol": pl.String,
            "quantity": pl.Int64,
            "price": pl.String,
            "commission": pl.String,
        },
    )
    trips = round_trips(result.trades, result.dates)
    frames["round_trips"] = pl.DataFrame(
        {
            "symbol": [t.symbol for t in trips],
            "opened": [t.opened for t in trips],
            "closed": [t.closed for t in trips],
            "quantity": [t.quantity for t in trips],
            "entry": [str(t.entry) for t in trips],
            "exit": [str(t.exit) for t in trips],
            "pnl": [str(t.pnl) for t in trips],
            "sessions": [t.sessions for t in trips],
        },
        schema={
            "symbol": pl.String,
            "opened": pl.Date,
            "closed": pl.Date,
            "quantity": pl.Int64,
            "entry": pl.String,
            "exit": pl.String,
            "pnl": pl.String,
            "sessions": pl.Int64,
        },
    )
    outcome.artifact = folder
    summary = outcome.summary()
    frames["summary"] = pl.DataFrame(
        {
            "run_id": [run_id],
            "strategy": [outcome.strategy],
            "data_hash": [outcome.config["data_hash"]],
            "config_json": [blob],
            "summary_json": [json.dumps(summary, default=str)],
        }
    )
    # each file whole or not at all, the summary (what marks a stored run) last
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in frames.items():
            with replaced_whole(folder / f"{name}.parquet") as partial:
                frame.write_parquet(partial)
    except OSError as exc:
        raise BacktestError(f"cannot save the run in {folder}: {exc}") from None
    return folder


def with_window(
    settings: BacktestSettings, start: date | None, end: date | None
) -> BacktestSettings:
    """The same settings over another window."""
    return replace(settings, start=start, end=end)


__all__ = [
    "BacktestError",
    "RunOutcome",
    "data_hash",
    "make_strategy",
    "parse_date",
    "parse_param",
    "parse_sweep",
    "run_backtest",
    "save_artifacts",
    "settings_from_config",
    "strategy_names",
    "with_window",
]
