"""Backtests as engine commands, for the terminal's Research screen.

A backtest sees only sessions the engine has already processed: on the demo replay the
stored bars run ahead of the simulated clock, and research must not peek at them.

`backtest.run` only queues the job and returns its id. The work runs in its own process
(spawned, so it shares neither the GIL nor the heap with the engine and the terminal:
a CPU-bound backtest in a thread of this process stretched key presses to 50-180 ms,
bench/README.md), watched by a thread that copies its progress and result into the job.
The engine's step lock (held while a command handler runs) is released at once and the
replay keeps going. The screen polls `backtest.status`.

`backtest.market` lends the same point-in-time cut to `qgtm backtest` in another
process: DuckDB lets one process open market.duckdb, so while the engine holds it the
CLI runs on the engine's bars (`pack_market` / `unpack_market`), not on none.
"""

from __future__ import annotations

import base64
import io
import itertools
import logging
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any, Protocol

import msgspec
import numpy as np

from qgtm.core.backtest import BacktestError, parse_sweep
from qgtm.core.config import Config
from qgtm.core.processes import ctrl_c_left_to_parent
from qgtm.core.results import BacktestJobStatus, StoredRunRow
from qgtm.core.universe import Universe
from qgtm.engine.backtest.api import (
    make_strategy,
    parse_date,
    run_backtest,
    save_artifacts,
    settings_from_config,
    strategy_names,
    window_warnings,
    with_backtest_flags,
)
from qgtm.engine.backtest.decision import regime_cache_for, use_regime_cache
from qgtm.engine.backtest.result import session_window
from qgtm.engine.backtest.runs import find_run, list_runs
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import AuxSeries, StrategyContext
from qgtm.engine.features.pit_features import ContextCache

log = logging.getLogger(__name__)

CURVE_POINTS = 400
PROGRESS_STEPS = 200  # progress messages a job sends at most
_SPAWN = multiprocessing.get_context("spawn")  # the engine runs threads: never fork


class _Engine(Protocol):
    config: Config
    data_dir: Path
    panel: PricePanel
    universe: Universe
    next_index: int
    strategy_inputs: ContextCache

    def bind(self, name: str, handler: Callable[..., Any], *, step_lock: bool = True) -> None: ...


@dataclass(slots=True)
class BacktestJob:
    """One background backtest and what it has produced so far."""

    job_id: int
    request: dict[str, Any]
    state: str = "queued"  # queued | running | done | failed | cancelled
    done: int = 0
    total: int = 0
    error: str = ""
    result: dict[str, Any] = field(default_factory=dict)

    def view(self, with_result: bool = True) -> BacktestJobStatus:
        """The job as clients see it (`with_result=False`: without the summary)."""
        return BacktestJobStatus(
            self.job_id,
            self.request,
            self.state,
            self.done,
            self.total,
            self.error,
            self.result if with_result else {},
        )


def _thin(values: np.ndarray, points: int = CURVE_POINTS) -> list[int]:
    if len(values) <= points:
        return list(range(len(values)))
    return sorted({round(i * (len(values) - 1) / (points - 1)) for i in range(points)})


def with_curves(
    summary: dict[str, Any], dates: Sequence[date], equity: np.ndarray
) -> dict[str, Any]:
    """A run's summary plus its equity and drawdown curves, thinned to CURVE_POINTS
    (what the Research screen draws), each point (ISO date, value), and its window's
    warnings (also for a run stored before summaries had them)."""
    peaks = np.maximum.accumulate(equity)
    keep = _thin(equity)
    return {
        **summary,
        "warnings": window_warnings(int(summary["report"]["sessions"])),
        "curve": [(dates[i].isoformat(), float(equity[i])) for i in keep],
        "drawdown": [(dates[i].isoformat(), float(equity[i] / peaks[i] - 1.0)) for i in keep],
    }


_PANEL_FIELDS = ("open", "high", "low", "close", "volume")


def pack_market(panel: PricePanel, context: StrategyContext | None) -> str:
    """`panel` and the strategies' `context` (None: the demo fallback) as base64 of an
    .npz archive: exact floats (NaN included), no pickle, about 1.4x the raw arrays."""
    arrays: dict[str, np.ndarray] = {
        "dates": np.array(panel.dates, dtype="datetime64[D]"),
        "symbols": np.array(panel.symbols, dtype=str),
    }
    for name in _PANEL_FIELDS:
        arrays[name] = getattr(panel, name)
    if context is not None:
        names = sorted(context.series)
        arrays["aux_names"] = np.array(names, dtype=str)
        arrays["aux_sources"] = np.array([context.sources.get(n, "") for n in names], dtype=str)
        arrays["aux_context"] = np.array([context.source, str(int(context.demo_fallback))])
        for k, name in enumerate(names):
            aux = context.series[name]
            arrays[f"aux{k}_observed"], arrays[f"aux{k}_known"] = aux.observed, aux.known
            arrays[f"aux{k}_values"] = aux.values
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def unpack_market(packed: str) -> tuple[PricePanel, StrategyContext | None]:
    """What `pack_market` packed."""
    with np.load(io.BytesIO(base64.b64decode(packed)), allow_pickle=False) as archive:
        panel = PricePanel(
            tuple(archive["dates"].astype(object).tolist()),
            tuple(str(s) for s in archive["symbols"]),
            *(archive[name] for name in _PANEL_FIELDS),
        )
        if "aux_names" not in archive:
            return panel, None
        names = [str(n) for n in archive["aux_names"]]
        series = {
            name: AuxSeries(
                name,
                archive[f"aux{k}_observed"],
                archive[f"aux{k}_known"],
                archive[f"aux{k}_values"],
            )
            for k, name in enumerate(names)
        }
        sources = {n: str(s) for n, s in zip(names, archive["aux_sources"], strict=True) if s}
        source, fallback = (str(v) for v in archive["aux_context"])
    return panel, StrategyContext(series, source, fallback == "1", sources)


class BacktestService:
    """Owns the background jobs of one engine."""

    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        self.jobs: dict[int, BacktestJob] = {}
        self._processes: dict[int, multiprocessing.process.BaseProcess] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        # A job's Queue starts multiprocessing's resource tracker on first use, passing it
        # sys.stderr's file descriptor. Inside the terminal, Textual has replaced
        # sys.stderr with a capture whose fileno() is -1, and the tracker would fail to
        # start ("bad value(s) in fds_to_keep"): every Research-screen run would fail.
        # The engine is built before the terminal starts, so start the tracker now.
        resource_tracker.ensure_running()

    def strategies(self) -> list[str]:
        """Strategy names a backtest can run."""
        return strategy_names()

    def run(
        self,
        strategy: str,
        start: str | None = None,
        end: str | None = None,
        params: dict[str, float] | None = None,
        runner: str = "event",
        sweep: str | None = None,
        flags: dict[str, Any] | None = None,
    ) -> BacktestJobStatus:
        """Validate and queue a backtest; returns its job record at once.

        `sweep` ("lookback=21:126:21", as `qgtm backtest --sweep`) runs every value in
        the vectorised runner with the quick decision and reports the best one with the
        deflated Sharpe and PBO over all of them. `flags`: this run's --impact, --borrow
        and --kill-reset over the engine's [backtest] section."""
        request = {"strategy": strategy, "start": start, "end": end, "params": params or {}}
        request["runner"] = runner
        request["flags"] = flags or {}
        settings = settings_from_config(
            with_backtest_flags(self.engine.config, flags or {}),
            parse_date(start, "from"),
            parse_date(end, "to"),
        )
        strategy_warmup = make_strategy(strategy, params).warmup
        if sweep:
            key, values = parse_sweep(sweep)
            for value in (values[0], values[-1]):  # a bad name or range fails here
                make_strategy(strategy, {**(params or {}), key: value})
            request["sweep"] = [key, values]
            settings = replace(settings, decision="signal")
        # the handler runs under the engine's step lock: a consistent point-in-time cut
        panel = self.engine.panel.history_before(self.engine.next_index)
        if len(panel) == 0:
            raise BacktestError("no processed sessions yet to backtest on")
        request["data_until"] = panel.dates[-1].isoformat()
        # the sessions it will trade (after the warm-up), known now: the screen shows
        # "0/1,012 sessions" while the process starts, and an empty window fails here
        first, last = session_window(panel, settings, strategy_warmup)
        request["window"] = [panel.dates[first].isoformat(), panel.dates[last - 1].isoformat()]
        request["sessions"] = last - first
        context = self.engine.strategy_inputs.get()  # the engine's own macro/COT inputs
        with self._lock:
            job = BacktestJob(next(self._ids), request)
            if not sweep:  # a sweep counts its own steps
                job.total = last - first
            self.jobs[job.job_id] = job
        thread = threading.Thread(
            target=self._work,
            args=(job, settings, panel, context),
            name=f"backtest-{job.job_id}",
            daemon=True,
        )
        thread.start()
        return job.view()

    def _work(
        self, job: BacktestJob, settings: Any, panel: PricePanel, context: StrategyContext
    ) -> None:
        """Run the job in a spawned process and copy what it reports into `job`."""
        sectors = {s: self.engine.universe.sector_of(s) for s in panel.symbols}
        payload = (job.request, settings, panel, sectors, context, self.engine.data_dir)
        messages = _SPAWN.Queue()
        process = _SPAWN.Process(
            target=_run_job,
            args=(messages, payload),
            name=f"qgtm-backtest-{job.job_id}",
            daemon=True,  # ends with the engine's process
        )
        with self._lock:
            if job.state != "queued":  # cancelled before it started
                messages.close()
                return
            job.state = "running"
            self._processes[job.job_id] = process
        try:
            with ctrl_c_left_to_parent():  # Ctrl+C on a foreground daemon: no job traceback
                process.start()  # seconds for a big panel: not under the lock cancel() takes
            if job.state == "cancelled":  # while it started
                process.terminate()
            while job.state == "running":
                try:
                    kind, *data = messages.get(timeout=0.25)
                except queue.Empty:
                    if not process.is_alive() and messages.empty():
                        error = f"backtest process exited with code {process.exitcode}"
                        self._finish(job, "failed", error=error)
                    continue
                if kind == "progress":
                    job.done, job.total = data
                elif kind == "done":
                    self._finish(job, "done", result=data[0])
                else:
                    self._finish(job, "failed", error=data[0])
        except Exception as exc:  # a background job must report, never vanish
            log.exception("event=backtest_failed job=%d", job.job_id)
            self._finish(job, "failed", error=f"{exc.__class__.__name__}: {exc}")
        finally:
            if process.pid is not None:  # start() itself may have failed
                process.join(timeout=5)
            self._processes.pop(job.job_id, None)
            messages.close()

    def _finish(self, job: BacktestJob, state: str, **fields: Any) -> None:
        """End a running job as `state` with `fields` (error, result), unless cancel()
        ended it first: a job says what happened first, and stays so."""
        with self._lock:
            if job.state != "running":
                return
            for name, value in fields.items():
                setattr(job, name, value)
            job.state = state

    def cancel(self, job: int) -> BacktestJobStatus:
        """Stop a queued or running job: its process is terminated (a run it had
        already saved stays stored)."""
        with self._lock:
            record = self.jobs.get(int(job))
            if record is None:
                raise BacktestError(f"no backtest job {job}")
            if record.state not in ("queued", "running"):
                raise BacktestError(f"backtest job {job} is {record.state}: nothing to cancel")
            record.state = "cancelled"  # the watcher stops copying its messages
            process = self._processes.get(record.job_id)
            if process is not None and process.is_alive():
                process.terminate()  # one process: a Research sweep runs its trials in it
        log.info("event=backtest_cancelled job=%d", record.job_id)
        return record.view()

    def market(self) -> dict[str, Any]:
        """The bars and strategy inputs a Research run would see now (the sessions this
        engine has processed), packed for `qgtm backtest` in another process."""
        panel = self.engine.panel.history_before(self.engine.next_index)
        if len(panel) == 0:
            raise BacktestError("no processed sessions yet to backtest on")
        context = self.engine.strategy_inputs.get()
        return {
            "pid": os.getpid(),
            "sessions": len(panel),
            "data_until": panel.dates[-1].isoformat(),
            "market": pack_market(panel, None if context.source == "demo" else context),
        }

    def status(self, job: int) -> BacktestJobStatus:
        """The job's state, progress and, once done, its summary and curves."""
        try:
            return self.jobs[int(job)].view()
        except KeyError:
            raise BacktestError(f"no backtest job {job}") from None

    def stored(self) -> list[StoredRunRow]:
        """The data dir's stored runs, newest first, one line each (`qgtm backtest --runs`)."""
        runs, _unreadable = list_runs(self.engine.data_dir)
        return [msgspec.convert(run.row(), StoredRunRow) for run in runs]

    def load(self, run: str) -> dict[str, Any]:
        """A stored run as a finished job's result: its summary and thinned curves."""
        stored = find_run(self.engine.data_dir, run)
        frame = stored.equity()
        return with_curves(stored.summary, frame["date"].to_list(), frame["equity"].to_numpy())

    def list_jobs(self) -> list[BacktestJobStatus]:
        """Every job's state without its result."""
        return [job.view(with_result=False) for job in self.jobs.values()]


def register_backtest_commands(engine: _Engine) -> BacktestService:
    """Expose backtest.strategies / run / status / cancel / jobs, the stored runs
    (backtest.stored: the list; backtest.load: one, with its curves) and
    backtest.market (the engine's bars, lent to `qgtm backtest`)."""
    service = BacktestService(engine)
    engine.bind("backtest.strategies", service.strategies)
    engine.bind("backtest.run", service.run)
    engine.bind("backtest.status", service.status)
    engine.bind("backtest.cancel", service.cancel)
    engine.bind("backtest.jobs", service.list_jobs)
    engine.bind("backtest.stored", service.stored)
    engine.bind("backtest.load", service.load)
    engine.bind("backtest.market", service.market)
    return service


def _run_job(messages: Any, payload: tuple) -> None:
    """The backtest process: run, save artifacts, send ("progress", done, total) now and
    then, and finally ("done", summary with thinned equity/drawdown curves) or
    ("failed", message)."""
    request, settings, panel, sectors, context, data_dir = payload
    use_regime_cache(regime_cache_for(data_dir))
    sent = [-1]

    def progress(done: int, total: int) -> None:
        step = max(total // PROGRESS_STEPS, 1)
        if done == total or done - sent[0] >= step:
            sent[0] = done
            messages.put(("progress", done, total))

    try:
        outcome = run_backtest(
            panel,
            request["strategy"],
            settings,
            request["params"],
            request["runner"],
            tuple(request["sweep"]) if request.get("sweep") else None,
            sector_of=sectors,
            progress=progress,
            context=context,
        )
        save_artifacts(outcome, data_dir)
        result = outcome.result
        messages.put(("done", with_curves(outcome.summary(), result.dates, result.equity)))
    except BacktestError as exc:
        messages.put(("failed", str(exc)))
    except Exception as exc:  # reported to the job, never lost with the process
        logging.getLogger(__name__).exception("event=backtest_failed")
        messages.put(("failed", f"{exc.__class__.__name__}: {exc}"))
