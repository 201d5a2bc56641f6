"""Stored backtest runs: list them, compare two, rerun one to check it reproduces.

Every run is saved by `api.save_artifacts` under <data-dir>/artifacts/backtests/<run id>/:
summary.parquet (the run id, strategy, data hash, the config that produced the run, with
the engine's code hash, and its summary) beside equity.parquet, positions.parquet,
trades.parquet and round_trips.parquet.

- `list_runs`: every readable run, newest first (an unreadable folder is reported, not
  fatal).
- `find_run`: a run by its id or a unique prefix of it.
- `compare_runs`: two runs' statistics side by side, every config field that differs,
  and how their daily returns relate over the sessions they share.
- `rerun`: the stored config run again on bars whose data hash matches the stored one;
  equity is compared session by session and trades one by one (nothing is written).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from qgtm.core.backtest import COMPARED, BacktestError, kill_switch_cell
from qgtm.engine.backtest.api import ARTIFACTS, RunOutcome, data_hash, run_backtest
from qgtm.engine.backtest.result import BacktestSettings
from qgtm.engine.backtest.stats import relative_stats
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import StrategyContext

Progress = Callable[[int, int], None]


def runs_dir(data_dir: Path) -> Path:
    """Where a data directory keeps its stored backtests."""
    return data_dir / ARTIFACTS / "backtests"


@dataclass(frozen=True, slots=True)
class StoredRun:
    """One stored backtest: its id, folder, config and summary."""

    run_id: str
    folder: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    saved: datetime  # when summary.parquet was written (UTC)

    @property
    def strategy(self) -> str:
        """The strategy's registered name."""
        return str(self.summary["strategy"])

    @property
    def window(self) -> tuple[str, str]:
        """First and last session of the result (ISO dates)."""
        return str(self.summary["start"]), str(self.summary["end"])

    def stat(self, key: str) -> Any:
        """A headline number from the summary (report, relative, validation, top level);
        "kill_switch" as a narrow cell (kill_switch_cell)."""
        report = self.summary.get("report", {})
        if key == "kill_switch":
            return kill_switch_cell(report)
        parts = (
            self.summary,
            report,
            report.get("relative", {}),
            report.get("trips", {}),
            self.summary["validation"],
        )
        for part in parts:
            if key in part:
                return part[key]
        return None

    def row(self) -> dict[str, Any]:
        """One line of the stored-runs list (JSON-ready)."""
        return {
            "run": self.run_id,
            "strategy": self.strategy,
            "runner": self.config.get("runner"),
            "decision": self.config.get("settings", {}).get("decision"),
            "start": self.window[0],
            "end": self.window[1],
            "sharpe": self.stat("sharpe"),
            "cagr": self.stat("cagr"),
            "max_drawdown": self.stat("max_drawdown"),
            "trades": self.stat("trades"),
            "data_hash": self.config.get("data_hash"),
            "saved": self.saved.isoformat(timespec="seconds"),
        }

    def equity(self) -> pl.DataFrame:
        """The stored curve: date, equity, cash, return, kill_tier per session."""
        return pl.read_parquet(self.folder / "equity.parquet")

    def trades(self) -> pl.DataFrame:
        """Every stored trade: date, symbol, signed quantity, price and commission."""
        return pl.read_parquet(self.folder / "trades.parquet")


def load_run(folder: Path) -> StoredRun:
    """The run stored in `folder`; BacktestError naming what is missing or unreadable."""
    path = folder / "summary.parquet"
    try:
        row = pl.read_parquet(path).row(0, named=True)
        return StoredRun(
            run_id=str(row["run_id"]),
            folder=folder,
            config=json.loads(row["config_json"]),
            summary=json.loads(row["summary_json"]),
            saved=datetime.fromtimestamp(path.stat().st_mtime, tz=UTC),
        )
    except (OSError, pl.exceptions.PolarsError, KeyError, ValueError, IndexError) as exc:
        raise BacktestError(f"{folder.name}: not a readable stored run ({exc})") from None


_LISTED: dict[Path, tuple[tuple[int, int], StoredRun]] = {}
"""list_runs' runs by folder, with the summary file's (mtime_ns, size) they were read at."""


def list_runs(data_dir: Path) -> tuple[list[StoredRun], list[str]]:
    """Every stored run, newest first, and one line per folder that could not be read.

    A folder whose summary file has not changed since the last listing in this process
    is not read again (the Research screen lists them under the engine's command lock;
    a league writes dozens of runs)."""
    root = runs_dir(data_dir)
    runs, problems = [], []
    folders = [f for f in sorted(root.iterdir()) if f.is_dir()] if root.is_dir() else []
    present = set(folders)
    for gone in [f for f in _LISTED if f.parent == root and f not in present]:
        del _LISTED[gone]  # deleted since the last listing: do not keep it in memory
    for folder in folders:
        try:
            stat = (folder / "summary.parquet").stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = (-1, -1)
        seen = _LISTED.get(folder)
        if seen is not None and seen[0] == stamp:
            runs.append(seen[1])
            continue
        try:
            run = load_run(folder)
        except BacktestError as exc:
            problems.append(str(exc))
            continue
        _LISTED[folder] = (stamp, run)
        runs.append(run)
    runs.sort(key=lambda r: (r.saved, r.run_id), reverse=True)
    return runs, problems


def find_run(data_dir: Path, key: str) -> StoredRun:
    """The run whose id is `key`, or the only one starting with it."""
    if not key or "/" in key or "\\" in key or key.startswith("."):
        raise BacktestError(f"bad run id {key!r}: a name from `qgtm backtest --runs`")
    root = runs_dir(data_dir)
    if (root / key / "summary.parquet").exists():
        return load_run(root / key)
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    matches = [name for name in names if name.startswith(key)]
    if len(matches) == 1:
        return load_run(root / matches[0])
    if not matches:
        raise BacktestError(f"no stored run {key!r} in {root} (see `qgtm backtest --runs`)")
    raise BacktestError(f"{key!r} matches {len(matches)} runs: {', '.join(matches[:5])}")


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two stored runs side by side."""

    a: StoredRun
    b: StoredRun
    stats: list[tuple[str, str, Any, Any]]  # (label, kind, a, b)
    differences: list[tuple[str, Any, Any]]  # (config field, a, b): fields that differ
    shared_sessions: int
    return_correlation: float | None  # of daily returns over the shared sessions
    tracking_error: float | None  # annualised std of the daily return differences

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "a": self.a.run_id,
            "b": self.b.run_id,
            "stats": [{"stat": label, "a": a, "b": b} for label, _, a, b in self.stats],
            "differences": [{"field": k, "a": a, "b": b} for k, a, b in self.differences],
            "shared_sessions": self.shared_sessions,
            "return_correlation": self.return_correlation,
            "tracking_error": self.tracking_error,
        }


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """Every config field (dotted path) whose value differs; absent fields are None."""
    flat_a, flat_b = _flatten(a), _flatten(b)
    keys = sorted(set(flat_a) | set(flat_b))
    return [(k, flat_a.get(k), flat_b.get(k)) for k in keys if flat_a.get(k) != flat_b.get(k)]


def compare_runs(a: StoredRun, b: StoredRun) -> Comparison:
    """Statistics, config differences and co-movement of the two runs' daily returns."""
    stats = [(label, kind, a.stat(key), b.stat(key)) for key, label, kind in COMPARED]
    joined = (
        a.equity()
        .select("date", pl.col("return").alias("a"))
        .join(b.equity().select("date", pl.col("return").alias("b")), on="date")
    )
    correlation = tracking = None
    if joined.height >= 2:  # B against A as its benchmark (stats.relative_stats)
        ra, rb = joined["a"].to_numpy(), joined["b"].to_numpy()
        relative = relative_stats(rb, ra)
        tracking = relative["tracking_error"]
        if np.std(ra) > 0 and np.std(rb) > 0:  # else no correlation to speak of
            correlation = relative["correlation"]
    return Comparison(
        a,
        b,
        stats,
        config_differences(a.config, b.config),
        joined.height,
        correlation,
        tracking,
    )


@dataclass(slots=True)
class Reproduction:
    """A stored run run again: how its new result compares with the stored one."""

    run: StoredRun
    outcome: RunOutcome
    stored_sessions: int  # sessions in the stored curve
    sessions: int  # sessions compared (dates in both curves)
    equity_max_difference: float  # max |new - stored| equity over those sessions
    trades_stored: int
    trades_new: int
    trades_identical: bool
    notes: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        """Same sessions, same equity to the cent, the same trades."""
        return (
            self.stored_sessions == self.sessions == len(self.outcome.result.dates)
            and self.equity_max_difference < 0.005
            and self.trades_identical
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "run": self.run.run_id,
            "reproduced": self.reproduced,
            "stored_sessions": self.stored_sessions,
            "sessions": self.sessions,
            "equity_max_difference": self.equity_max_difference,
            "trades_stored": self.trades_stored,
            "trades_new": self.trades_new,
            "trades_identical": self.trades_identical,
            "notes": self.notes,
        }


def matching_bars(run: StoredRun, panel: PricePanel) -> PricePanel:
    """`panel`, or its first sessions, with the data hash the run was computed on.

    A store that has grown since (a data refresh appends sessions) still holds the run's
    bars as a prefix: the prefix ending at the run's data_until (or, for runs stored
    before that field, at the run's last session) is tried too."""
    wanted = run.config.get("data_hash")
    if data_hash(panel) == wanted:
        return panel
    until = run.config.get("data_until") or run.window[1]
    cut = panel.history_before(bisect_right(panel.dates, date.fromisoformat(until)))
    if len(cut) and data_hash(cut) == wanted:
        return cut
    raise BacktestError(
        f"the bars differ from the ones {run.run_id} used (data hash {str(wanted)[:12]}, "
        f"now {data_hash(panel)[:12]}): pass --data with the file it ran on"
    )


def rerun(
    run: StoredRun,
    panel: PricePanel,
    sector_of: Mapping[str, str],
    context: StrategyContext | None = None,
    progress: Progress | None = None,
    workers: int = 1,
) -> Reproduction:
    """Run `run`'s stored config again on `panel` (data hash checked first)."""
    bars = matching_bars(run, panel)
    config = run.config
    settings = BacktestSettings.from_dict(config["settings"])
    sweep = walk = None
    if "sweep" in config:
        key = next(k for k in config["sweep"] if k != "processes")
        sweep = (key, [float(v) for v in config["sweep"][key]])
    if "walk_forward" in config:
        train, test, anchored = config["walk_forward"]
        walk = (int(train), int(test), bool(anchored))
    cv = (int(config["cv"][0]), int(config["cv"][1])) if "cv" in config else None
    outcome = run_backtest(
        bars,
        config["strategy"],
        settings,
        config.get("params", {}),
        config["runner"],
        sweep,
        walk,
        sector_of,
        progress,
        context,
        workers=workers,
        cv=cv,
        benchmark=config.get("benchmark"),  # runs stored before benchmarks: None
    )
    stored = run.equity()
    new = pl.DataFrame({"date": outcome.result.dates, "new": outcome.result.equity})
    joined = stored.select("date", "equity").join(new, on="date")
    difference = (
        float(np.max(np.abs(joined["equity"].to_numpy() - joined["new"].to_numpy())))
        if joined.height
        else float("inf")
    )
    old_trades = run.trades()
    new_trades = [(t.day, t.symbol, t.quantity, str(t.price)) for t in outcome.result.trades]
    same_trades = new_trades == list(
        zip(
            old_trades["date"].to_list(),
            old_trades["symbol"].to_list(),
            old_trades["quantity"].to_list(),
            old_trades["price"].to_list(),
            strict=True,
        )
    )
    notes = []
    code_then, code_now = config.get("code"), outcome.config.get("code")
    if code_then != code_now:  # runs stored before code hashes: None
        notes.append(
            f"made by engine code {code_then or 'unrecorded'}, this is {code_now}: "
            "a changed engine can change results"
        )
    inputs_then = config.get("inputs", {})
    inputs_now = outcome.config.get("inputs", {})
    if inputs_then != inputs_now:
        notes.append(f"macro/COT inputs were {inputs_then}, now {inputs_now}")
    if stored.height != len(outcome.result.dates):
        notes.append(f"stored {stored.height} sessions, rerun {len(outcome.result.dates)}")
    return Reproduction(
        run,
        outcome,
        stored.height,
        joined.height,
        difference,
        old_trades.height,
        len(new_trades),
        same_trades,
        notes,
    )
