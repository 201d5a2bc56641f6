"""`qgtm backtest`: argument handling, progress and the reports a terminal shows.

qgtm/cli/parser.py declares the arguments; the engine (qgtm.engine.backtest) runs the
backtests and returns data; everything printed is rendered here.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from qgtm.cli.output import print_json
from qgtm.core.backtest import (
    BACKTEST_FLAGS,
    MONTH_LABELS,
    BacktestError,
    compact_percent,
    kill_switch_brief,
    monthly_rows,
    params_text,
    parse_param,
    parse_sweep,
    stat_text,
)
from qgtm.core.config import Config
from qgtm.engine.backtest.api import (
    RunOutcome,
    make_strategy,
    parse_date,
    run_backtest,
    save_artifacts,
    settings_from_config,
    strategy_names,
    with_backtest_flags,
)
from qgtm.engine.backtest.decision import regime_cache_for, use_regime_cache
from qgtm.engine.backtest.event_driven import Progress as ProgressFn
from qgtm.engine.backtest.league import league_settings, run_league
from qgtm.engine.backtest.market import BacktestMarket, MarketHeldError, load_market, sectors_of
from qgtm.engine.backtest.runs import (
    Comparison,
    StoredRun,
    compare_runs,
    find_run,
    list_runs,
    rerun,
    runs_dir,
)
from qgtm.engine.backtest.service import unpack_market
from qgtm.engine.backtest.stats import EQUAL_WEIGHT, Report, kill_switch_text
from qgtm.engine.features.pit_features import summarise_inputs


def _parse_cv(text: str | None) -> tuple[int, int | None] | None:
    """'5' -> (5, None: 1% of the sessions), '5:10' -> (5, 10)."""
    if text is None:
        return None
    parts = text.split(":")
    try:
        if len(parts) not in (1, 2):
            raise ValueError
        k = int(parts[0])
        embargo = int(parts[1]) if len(parts) == 2 else None
        if k < 2 or (embargo is not None and embargo < 0):
            raise ValueError
        return k, embargo
    except ValueError:
        raise BacktestError(f"bad --cv {text!r}: want K[:EMBARGO], K >= 2") from None


def _parse_walk(text: str | None) -> tuple[int, int, bool] | None:
    if text is None:
        return None
    parts = text.split(":")
    try:
        anchored = len(parts) == 3 and parts[2] == "anchored"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not anchored):
            raise ValueError
        return int(parts[0]), int(parts[1]), anchored
    except ValueError:
        raise BacktestError(f"bad --walk-forward {text!r}: want TRAIN:TEST[:anchored]") from None


def market(config: Config, data_dir: Path, data_file: Path | None) -> BacktestMarket:
    """The backtest's bars (engine.backtest.market.load_market), or, while a running
    engine holds market.duckdb, the sessions it has processed, borrowed over its attach
    socket as its Research screen sees them. Notes about their origin go to stderr."""
    try:
        loaded = load_market(config, data_dir, data_file)
    except MarketHeldError:
        loaded = engine_market(data_dir)
    for line in loaded.notes:
        print(line, file=sys.stderr)
    return loaded


def engine_market(data_dir: Path) -> BacktestMarket:
    """The bars and strategy inputs lent by the engine that holds `data_dir`."""
    from qgtm.engine.live.attach import AttachError, RemoteCommandError, call_engine

    try:
        lent = call_engine(data_dir, "backtest.market")
    except (AttachError, RemoteCommandError, OSError) as exc:  # TimeoutError is an OSError
        raise BacktestError(
            f"{data_dir}/market.duckdb is held by a running engine that did not lend its "
            f"bars ({exc or type(exc).__name__}); backtest from its Research screen or "
            "pass another --data-dir"
        ) from None
    note = (
        f"market.duckdb is held by the running engine (pid {lent['pid']}): backtesting on "
        f"the {lent['sessions']:,} sessions it has processed, to {lent['data_until']}"
    )
    panel, context = unpack_market(lent["market"])
    return BacktestMarket(panel, context, [note])


@contextmanager
def _progress(label: str) -> Iterator[ProgressFn]:
    console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _fmt(value: Any, pct: bool = False) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "nan"
    if isinstance(value, float):
        return f"{value:.2%}" if pct else f"{value:.3f}"
    if isinstance(value, list):
        return ", ".join(_fmt(v) if isinstance(v, float) else str(v) for v in value)
    return str(value)


COUNTS = {"observations", "trials", "train", "test", "trades", "folds", "embargo"}
"""Statistics that are numbers of sessions or trials: printed whole, with separators."""
PERCENTS = {"cagr", "max_drawdown"}
RELATIVE = (
    ("benchmark_cagr", "benchmark CAGR", True),
    ("benchmark_sharpe", "benchmark Sharpe", False),
    ("beta", "beta", False),
    ("alpha", "alpha / year", True),
    ("correlation", "correlation", False),
    ("tracking_error", "tracking error", True),
    ("information_ratio", "information ratio", False),
)
"""The report's rows against the benchmark (stats.relative_stats), in order."""
VALIDATIONS = {
    "walk_forward": ("walk-forward", "test window"),
    "cross_validation": ("purged CV", "test fold"),
}
"""Validation blocks of a sweep: their label in the report, and what each choice is for."""


def _stat(key: str, value: Any) -> str:
    """One validation value as the report prints it."""
    key = key.removeprefix("oos_")
    if key in COUNTS or key.endswith("_sessions"):
        if isinstance(value, float) and not math.isfinite(value):
            return _fmt(value)
        return f"{value:,.0f}"
    return _fmt(value, key in PERCENTS)


def _run_header(config: dict[str, Any], start: str, end: str, name: str | None = None) -> str:
    """'tsmom_3m 2008-04-07 .. 2025-12-31, event runner, live decision' (rich markup);
    `name` defaults to the config's strategy (a stored run shows its id)."""
    settings = config.get("settings", {})
    reset = settings.get("kill_reset", "hold")
    return (
        f"[bold]{name or config['strategy']}[/] {start} .. {end}, "
        f"{config.get('runner')} runner, {settings.get('decision', 'live')} decision"
        + ("" if reset == "hold" else f", {reset} kill reset")
    )


def _costs_text(costs: dict[str, Any]) -> str:
    """'$0.005/sh, slippage 5bp, spread 2bp, impact 0bp at ADV, borrow 0bp/yr': a stored
    CostModel.as_dict in one line (the report's `costs:` line)."""
    return (
        f"${costs['commission_per_share']}/sh, slippage {costs['slippage_bps']:g}bp, "
        f"spread {costs['spread_bps']:g}bp, impact {costs['impact_bps_at_full_adv']:g}bp "
        f"at ADV, borrow {costs['borrow_bps_annual']:g}bp/yr"
    )


def _kill_switch_rows(rep: Report, reset: str) -> list[tuple[str, str]]:
    """'kill switch' and every tier the run entered, mildest first (the worst alone is
    rep.kill_switch), so a book throttled in year two shows it on the report."""
    if len(rep.kill_spells) < 2:
        return [("kill switch", rep.kill_switch)]
    return [
        ("kill switch" if k == 0 else "", kill_switch_text({tier: spell}, reset=reset))
        for k, (tier, spell) in enumerate(rep.kill_spells.items())
    ]


def _print_report(outcome: RunOutcome) -> None:
    """The report for a terminal: header lines, the statistics, the monthly returns
    (13 narrow columns, so an 80-column terminal shows them whole) and any sweep."""
    console = Console()
    rep = outcome.report
    result = outcome.result
    console.print(
        _run_header(outcome.config, str(result.dates[0]), str(result.dates[-1])),
        highlight=False,
    )
    console.print(f"params: {params_text(outcome.params)}", highlight=False)
    console.print(f"costs: {_costs_text(outcome.config['settings']['costs'])}", highlight=False)
    for warning in outcome.summary()["warnings"]:
        console.print(f"warning: {warning}", style="bold yellow", highlight=False)
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("statistic")
    table.add_column("value", justify="right")
    rows = [
        ("final equity", f"{result.equity[-1]:,.2f}"),
        ("trades", f"{len(result.trades):,}"),
        ("total return", _fmt(rep.total_return, True)),
        ("CAGR", _fmt(rep.cagr, True)),
        ("volatility", _fmt(rep.volatility, True)),
        ("Sharpe", _fmt(rep.sharpe)),
        ("Sortino", _fmt(rep.sortino)),
        ("Calmar", _fmt(rep.calmar)),
        ("max drawdown", _fmt(rep.max_drawdown, True)),
        ("max drawdown sessions", f"{rep.max_drawdown_sessions:,}"),
        *_kill_switch_rows(rep, outcome.config["settings"].get("kill_reset", "hold")),
        ("hit rate", _fmt(rep.hit_rate, True)),
        ("turnover / year", _fmt(rep.turnover)),
        ("round trips", f"{rep.trips.get('round_trips', 0):,}"),
    ]
    if rep.trips.get("round_trips"):
        rows += [
            ("trip win rate", _fmt(rep.trips["trip_win_rate"], True)),
            ("average win", f"{rep.trips['average_win']:,.2f}"),
            ("average loss", f"{rep.trips['average_loss']:,.2f}"),
            ("profit factor", _fmt(rep.trips["profit_factor"])),
            ("average sessions held", f"{rep.trips['average_sessions_held']:,.1f}"),
        ]
    inputs = summarise_inputs(outcome.config.get("inputs", {}))
    if inputs:
        rows.append(("inputs", inputs))
    rows += [(f"exposure {k}", _fmt(v, True)) for k, v in rep.exposure_by_sector.items()]
    if rep.benchmark:
        rows.append(("benchmark", rep.benchmark))
        rows += [(label, _fmt(rep.relative[key], pct)) for key, label, pct in RELATIVE]
    chosen: list[str] = []
    swept = next(iter(outcome.sweep[0])) if outcome.sweep else "value"
    for key, value in outcome.validation.items():
        if isinstance(value, dict):  # a walk-forward or CV; its choices follow the table
            name, per = VALIDATIONS[key]
            rows += [
                (f"{name} {k.replace('_', ' ')}", _stat(k, v))
                for k, v in value.items()
                if k != "chosen"
            ]
            chosen.append(f"{name} {swept} per {per}: {_fmt(value.get('chosen', []))}")
        else:
            rows.append((key.replace("_", " "), _stat(key, value)))
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    for line in chosen:
        console.print(line, highlight=False)
    months = Table(title="monthly returns, %", box=box.SIMPLE_HEAD, padding=0, show_edge=False)
    months.add_column("year")
    for label in (*MONTH_LABELS, "total"):
        months.add_column(label, justify="right", min_width=4)
    for year, values in monthly_rows(rep.monthly_returns):
        months.add_row(str(year), *(compact_percent(v) for v in values))
    console.print(months)
    if outcome.sweep:
        processes = outcome.config.get("sweep", {}).get("processes", 1)
        sweep = Table(
            title=f"sweep ({processes} process{'es' if processes > 1 else ''})",
            box=box.SIMPLE_HEAD,
        )
        for name in outcome.sweep[0]:
            sweep.add_column(name.replace("_", " "), justify="right")
        for row in outcome.sweep:
            sweep.add_row(*(_fmt(v, k in PERCENTS) for k, v in row.items()))
        console.print(sweep)
    print(f"artifacts: {outcome.artifact}")


def _league(
    config: Config,
    data_dir: Path,
    loaded: BacktestMarket,
    as_json: bool,
    decision: str = "signal",
) -> int:
    """`--all`: every registered strategy (engine.backtest.league), as a table or JSON."""
    settings = league_settings(config, decision)
    panel = loaded.panel
    names = strategy_names()
    with _progress("league") as progress:
        rows = run_league(settings, data_dir, panel, loaded.context, progress)
    if as_json:
        print_json(rows)
        return 0
    table = Table(
        title=f"league: {len(names)} strategies, {panel.dates[0]} .. {panel.dates[-1]}, "
        f"{decision} decision"
        + ("" if settings.kill_reset == "hold" else f", {settings.kill_reset} kill reset"),
        box=box.SIMPLE_HEAD,  # no rules or edges: 80 columns hold the kill-switch column
        show_edge=False,
        pad_edge=False,
    )
    for col in ("strategy", "CAGR", "Sharpe", "max DD", "PSR", "trades", "kill switch"):
        table.add_column(col, justify="left" if col in ("strategy", "kill switch") else "right")
    for r in rows:
        if "error" in r:  # listed under the table: a message would widen a number column
            continue
        table.add_row(
            r["strategy"],
            _fmt(r["cagr"], True),
            _fmt(r["sharpe"]),
            _fmt(r["max_drawdown"], True),
            _fmt(r["psr"]),
            f"{r['trades']:,}",
            kill_switch_brief(r) or "",
        )
    console = Console()
    console.print(table)
    for r in rows:
        if "error" in r:
            name, error = r["strategy"], r["error"]
            reason = error if error.startswith(f"{name} ") else f"{name}: {error}"
            console.print(f"not run: {reason}", highlight=False)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run `qgtm backtest`; expected mistakes raise BacktestError / UserBarsError."""
    from qgtm.cli.config import load

    config, data_dir = load(args, engine=True)
    start, end = parse_date(args.start, "--from"), parse_date(args.end, "--to")
    if start and end and start > end:
        raise BacktestError(f"--from {start} is after --to {end}")
    params = dict(parse_param(p) for p in args.param)
    sweep = parse_sweep(args.sweep) if args.sweep else None
    walk = _parse_walk(args.walk_forward)
    if walk is not None and sweep is None:
        raise BacktestError("--walk-forward needs a --sweep to choose from")
    cv = _parse_cv(getattr(args, "cv", None))
    if cv is not None and sweep is None:
        raise BacktestError("--cv needs a --sweep to choose from")
    given = {f: getattr(args, f[2:].replace("-", "_"), None) for f in BACKTEST_FLAGS}
    config = with_backtest_flags(config, given)
    stored = [flag for flag in ("runs", "compare", "rerun") if getattr(args, flag, None)]
    if stored:
        if len(stored) > 1 or args.strategy or args.all:
            raise BacktestError("--runs, --compare and --rerun go alone (no strategy, no --all)")
        return _stored_runs_command(args, config, data_dir)
    if not args.all and not args.strategy:
        raise BacktestError("name a strategy (see `qgtm strategies`) or pass --all")
    if not args.all:
        make_strategy(args.strategy, params)  # fail fast on a bad name or parameter
    loaded = market(config, data_dir, args.data)
    use_regime_cache(regime_cache_for(data_dir))
    decision = getattr(args, "decision", None)
    if args.all:
        return _league(config, data_dir, loaded, args.json, decision or "signal")
    panel, context = loaded.panel, loaded.context
    benchmark = args.benchmark or EQUAL_WEIGHT
    # one run: the live decision; a sweep runs it once per value, so the quick one
    decision = decision or ("signal" if sweep else "live")
    settings = replace(settings_from_config(config, start, end), decision=decision)
    with _progress(f"backtest {args.strategy}") as progress:
        outcome = run_backtest(
            panel,
            args.strategy,
            settings,
            params,
            args.runner,
            sweep,
            walk,
            sectors_of(panel),
            progress,
            context,
            workers=os.cpu_count() or 1,  # a sweep's trials, one process per core
            cv=cv,
            benchmark=None if benchmark.lower() == "none" else benchmark,
        )
    if args.data is not None:  # where the bars came from, for --rerun
        outcome.config["data_file"] = str(args.data.resolve())
    save_artifacts(outcome, data_dir)
    if args.json:
        print_json(outcome.summary())
    else:
        _print_report(outcome)
    return 0


def _stored_runs_command(args: argparse.Namespace, config: Config, data_dir: Path) -> int:
    """--runs, --compare A B, --rerun RUN over <data-dir>/artifacts/backtests."""
    if args.runs:
        runs, problems = list_runs(data_dir)
        for line in problems:
            print(f"skipped {line}", file=sys.stderr)
        if args.json:
            print_json([r.row() for r in runs])
        else:
            _print_runs(runs, data_dir)
        return 0
    if args.compare:
        comparison = compare_runs(*(find_run(data_dir, key) for key in args.compare))
        if args.json:
            print_json(comparison.as_dict())
        else:
            _print_comparison(comparison)
        return 0
    run = find_run(data_dir, args.rerun)
    data_file = args.data
    if data_file is None and run.config.get("data_file"):
        data_file = Path(run.config["data_file"])
        if not data_file.exists():
            raise BacktestError(f"{run.run_id} ran on {data_file}, which is gone: pass --data")
    loaded = market(config, data_dir, data_file)
    use_regime_cache(regime_cache_for(data_dir))
    with _progress(f"rerun {run.run_id}") as progress:
        check = rerun(
            run,
            loaded.panel,
            sectors_of(loaded.panel),
            loaded.context,
            progress,
            os.cpu_count() or 1,
        )
    if args.json:
        print_json(check.as_dict())
    else:
        verdict = "reproduced" if check.reproduced else "NOT reproduced"
        console = Console()
        console.print(
            f"{run.run_id}: {verdict}: {check.sessions:,} sessions compared, largest equity "
            f"difference {check.equity_max_difference:,.2f}; trades "
            f"{'identical' if check.trades_identical else 'differ'} "
            f"({check.trades_stored:,} stored, {check.trades_new:,} now)",
            highlight=False,
        )
        for note in check.notes:
            console.print(f"  {note}", highlight=False)
        if not check.reproduced and not check.notes:
            console.print(
                "  same engine code, bars and inputs: a result that does not reproduce is "
                "a bug; please report it with this run's folder",
                highlight=False,
            )
    return 0 if check.reproduced else 1


def _print_runs(runs: list[StoredRun], data_dir: Path) -> None:
    """One line per run, ids whole (they are what --compare and --rerun take): 80
    columns hold a 30-character id, runner, decision, window (months), Sharpe, CAGR."""
    console = Console()
    if not runs:
        console.print(f"no stored runs in {runs_dir(data_dir)}", highlight=False)
        return
    table = Table(title=f"{len(runs)} stored runs, newest first", box=box.SIMPLE_HEAD, padding=0)
    table.add_column("run", no_wrap=True)
    for name in ("runner", "decision", "window"):
        table.add_column(name, no_wrap=True)
    for name in ("Sharpe", "CAGR"):
        table.add_column(name, justify="right", min_width=7)
    for run in runs:
        row = run.row()
        table.add_row(
            run.run_id,
            str(row["runner"]),
            str(row["decision"]),
            f"{row['start'][:7]}..{row['end'][:7]}",
            _fmt(row["sharpe"]),
            _fmt(row["cagr"], True),
        )
    console.print(table)


def _print_comparison(comparison: Comparison) -> None:
    console = Console()
    for tag, run in (("A", comparison.a), ("B", comparison.b)):
        console.print(f"{tag}: {_run_header(run.config, *run.window, run.run_id)}", highlight=False)
    table = Table(box=box.SIMPLE_HEAD)
    for name in ("statistic", "A", "B", "B - A"):
        table.add_column(name, justify="left" if name == "statistic" else "right")
    for label, kind, a, b in comparison.stats:
        both = a is not None and b is not None and kind != "text"
        table.add_row(
            label,
            stat_text(a, kind),
            stat_text(b, kind),
            stat_text(b - a, kind) if both else "",
        )
    console.print(table)
    if comparison.differences:
        console.print("config differences (A -> B):", highlight=False)
        for key, a, b in comparison.differences:
            console.print(f"  {key}: {a} -> {b}", highlight=False, soft_wrap=True)
    else:
        console.print("same config", highlight=False)
    if comparison.shared_sessions >= 2:
        correlation = comparison.return_correlation
        console.print(
            f"{comparison.shared_sessions:,} shared sessions; daily return correlation "
            f"{'n/a' if correlation is None else f'{correlation:.3f}'}; tracking error "
            f"{comparison.tracking_error:.2%} a year",
            highlight=False,
        )
    else:
        console.print("no shared sessions", highlight=False)
