"""Backtest engine commands: queue at once, work off the step lock, report progress."""

from __future__ import annotations

import multiprocessing
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qgtm.core.backtest import BacktestError
from qgtm.engine.backtest.validation import short_window_warning
from qgtm.engine.strategies.registry import create
from tests.engine.backtest.engines import research_engine


def test_run_returns_at_once_and_the_engine_keeps_stepping_while_it_works(
    tmp_path: Path,
) -> None:
    engine = research_engine(tmp_path)
    try:
        started = time.monotonic()
        job = engine.call("backtest.run", strategy="tsmom")
        assert time.monotonic() - started < 0.5
        assert job.state in ("queued", "running")
        # point in time: only sessions the replay has processed (it starts 2010-01-04)
        assert job.request["data_until"] < "2010-01-04"
        # the step lock is free: the replay advances while the backtest runs
        assert engine.step()
        assert engine.call("backtest.status", job=job.job).state in ("running", "done")
        deadline = time.monotonic() + 60
        status = engine.call("backtest.status", job=job.job)
        while status.state not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
            status = engine.call("backtest.status", job=job.job)
        assert status.state == "done", status.error
        assert status.done == status.total > 0
        result = status.result
        assert result["curve"] and len(result["curve"]) == len(result["drawdown"])
        assert max(dd for _, dd in result["drawdown"]) <= 0.0
        assert Path(result["artifact"]).exists()
        assert result["end"] < "2010-01-04"
        assert [j.job for j in engine.call("backtest.jobs")] == [job.job]
    finally:
        engine.close()


def test_bad_requests_fail_in_the_call_with_a_clear_message(tmp_path: Path) -> None:
    engine = research_engine(tmp_path)
    try:
        with pytest.raises(BacktestError, match="unknown strategy 'nope'"):
            engine.call("backtest.run", strategy="nope")
        with pytest.raises(BacktestError, match="no backtest job 99"):
            engine.call("backtest.status", job=99)
    finally:
        engine.close()


def test_the_backtest_runs_in_its_own_process_and_a_dead_one_is_reported(tmp_path: Path):
    """Off the engine's GIL: the job runs in a spawned process. If that process dies
    (killed, out of memory), the job says so instead of staying 'running' forever."""
    import multiprocessing
    import os
    import signal

    engine = research_engine(tmp_path)
    try:
        before = {p.pid for p in multiprocessing.active_children()}
        # rsi2 sits out some regimes: the live decision fits the Markov model (seconds)
        job = engine.call("backtest.run", strategy="rsi2")
        deadline = time.monotonic() + 30
        worker = None
        while worker is None and time.monotonic() < deadline:
            named = [
                p
                for p in multiprocessing.active_children()
                if p.name.startswith("qgtm-backtest-") and p.pid not in before
            ]
            worker = named[0] if named else None
            time.sleep(0.02)
        assert worker is not None and worker.pid != os.getpid()
        os.kill(worker.pid, signal.SIGKILL)
        status = engine.call("backtest.status", job=job.job)
        while status.state == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
            status = engine.call("backtest.status", job=job.job)
        assert status.state == "failed"
        assert status.error == f"backtest process exited with code {-signal.SIGKILL}"
    finally:
        engine.close()


def test_a_backtest_process_that_cannot_start_is_a_failed_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qgtm.engine.backtest import service

    def refuse(self) -> None:
        raise OSError("cannot spawn")

    import threading

    crashes: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashes.append(args.exc_value))
    monkeypatch.setattr(service._SPAWN.Process, "start", refuse)
    engine = research_engine(tmp_path)
    try:
        job = engine.call("backtest.run", strategy="tsmom")
        deadline = time.monotonic() + 10
        status = engine.call("backtest.status", job=job.job)
        while status.state in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.02)
            status = engine.call("backtest.status", job=job.job)
        assert (status.state, status.error) == ("failed", "OSError: cannot spawn")
        for thread in threading.enumerate():
            if thread.name.startswith("backtest-"):
                thread.join(timeout=10)
        assert crashes == []  # the watcher thread ends cleanly, not with a traceback
    finally:
        engine.close()


STDERR_CAPTURED = """
import multiprocessing, sys
from pathlib import Path
from tests.engine.backtest.engines import research_engine

engine = research_engine(Path(sys.argv[1]))  # built before the terminal, as cli.py does


class Capture:  # what Textual puts in sys.stderr while the terminal runs
    def write(self, text): return len(text)
    def flush(self): pass
    def fileno(self): return -1


sys.stderr = Capture()
multiprocessing.get_context("spawn").Queue().close()  # what every backtest job makes first
sys.stderr = sys.__stderr__
engine.close()
print("queue ok")
"""


def test_jobs_can_start_while_the_terminal_captures_stderr(tmp_path: Path) -> None:
    """A fresh process, like `qgtm`: the engine is built, then Textual swaps sys.stderr
    for a capture with fileno() -1. A job's first Queue must still start multiprocessing's
    resource tracker (it was failing with 'bad value(s) in fds_to_keep', so the Research
    screen could not run a backtest unless something had started the tracker before)."""
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", STDERR_CAPTURED, str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "queue ok"


def _store_two_runs(engine) -> list[str]:
    """Two quick backtests of the engine's processed bars, saved as the CLI saves them."""
    from qgtm.engine.backtest.api import run_backtest, save_artifacts
    from qgtm.engine.backtest.result import BacktestSettings

    panel = engine.panel.history_before(engine.next_index)
    ids = []
    for fast in (5, 8):
        outcome = run_backtest(
            panel, "sma_ref", BacktestSettings(decision="signal"), {"fast": fast}, "vector"
        )
        ids.append(save_artifacts(outcome, engine.data_dir).name)
    return ids


def test_stored_runs_are_listed_and_load_with_their_curves(tmp_path: Path) -> None:
    engine = research_engine(tmp_path)
    try:
        ids = _store_two_runs(engine)
        rows = engine.call("backtest.stored")
        assert sorted(r.run for r in rows) == sorted(ids)
        loaded = engine.call("backtest.load", run=ids[1][:14])
        assert loaded["params"]["fast"] == 8 and Path(loaded["artifact"]).name == ids[1]
        assert loaded["curve"][-1][0] == loaded["end"]
        assert loaded["curve"][-1][1] == pytest.approx(loaded["final_equity"])
        assert max(dd for _, dd in loaded["drawdown"]) <= 0.0
        with pytest.raises(BacktestError, match="no stored run 'nosuch'"):
            engine.call("backtest.load", run="nosuch")
    finally:
        engine.close()


def test_a_packed_market_unpacks_to_the_same_bars_and_inputs(demo_panel) -> None:
    from dataclasses import replace as with_fields

    import numpy as np

    from qgtm.engine.backtest.api import data_hash
    from qgtm.engine.backtest.service import pack_market, unpack_market
    from qgtm.engine.features.auxiliary import StrategyContext, demo_context

    close = demo_panel.close.copy()
    close[3, 1] = np.nan  # a missing bar survives the trip as NaN
    panel = with_fields(demo_panel, close=close)
    fallback = demo_context()
    names = sorted(fallback.series)[:2]
    context = StrategyContext(
        {n: fallback.series[n] for n in names}, "store", True, {names[0]: "FRED"}
    )
    back, back_context = unpack_market(pack_market(panel, context))
    assert back.dates == panel.dates and back.symbols == panel.symbols
    assert data_hash(back) == data_hash(panel)
    assert np.isnan(back.close[3, 1])
    assert back_context is not None and sorted(back_context.series) == names
    assert back_context.source == "store" and back_context.demo_fallback
    assert back_context.source_of(names[0]) == "FRED"
    assert back_context.source_of(names[1]) == "store"
    for name in names:
        day = back.dates[-1]
        assert np.array_equal(back_context.known_before(name, day), context.known_before(name, day))
    assert unpack_market(pack_market(panel, None))[1] is None


def test_the_engine_lends_the_bars_it_has_processed(tmp_path: Path) -> None:
    from qgtm.engine.backtest.api import data_hash
    from qgtm.engine.backtest.service import unpack_market

    engine = research_engine(tmp_path)
    try:
        lent = engine.call("backtest.market")
        panel, context = unpack_market(lent["market"])
        cut = engine.panel.history_before(engine.next_index)
        assert lent["sessions"] == len(cut) and lent["data_until"] < "2010-01-04"
        assert data_hash(panel) == data_hash(cut)
        assert context is None  # the demo engine's inputs are the demo fallback
    finally:
        engine.close()


def test_a_running_job_can_be_cancelled_and_its_process_ends(tmp_path: Path) -> None:
    engine = research_engine(tmp_path)
    try:
        # 13 trials: over a second of work after the process has started (another second)
        job = engine.call("backtest.run", strategy="tsmom", sweep="lookback=60:300:20")
        name = f"qgtm-backtest-{job.job}"
        deadline = time.monotonic() + 30
        found: list[multiprocessing.process.BaseProcess] = []
        while not found and time.monotonic() < deadline:
            found = [p for p in multiprocessing.active_children() if p.name == name]
            time.sleep(0.02)
        (process,) = found
        while process.pid is None and time.monotonic() < deadline:
            time.sleep(0.02)
        # Ctrl+C on a foreground daemon is the daemon's to handle: the job never sees it
        status = Path(f"/proc/{process.pid}/status").read_text()
        blocked = next(line for line in status.splitlines() if line.startswith("SigBlk:"))
        assert int(blocked.split()[1], 16) & (1 << (signal.SIGINT - 1))
        cancelled = engine.call("backtest.cancel", job=job.job)
        assert cancelled.state == "cancelled"
        process.join(timeout=10)
        assert not process.is_alive()
        time.sleep(0.5)  # the watcher has seen the process end: still cancelled, not failed
        assert engine.call("backtest.status", job=job.job).state == "cancelled"
        with pytest.raises(BacktestError, match="is cancelled: nothing to cancel"):
            engine.call("backtest.cancel", job=job.job)
        with pytest.raises(BacktestError, match="no backtest job 99"):
            engine.call("backtest.cancel", job=99)
        assert not list((tmp_path / "artifacts").rglob("summary.parquet"))  # stopped early
    finally:
        engine.close()


def test_a_job_cancelled_while_queued_never_starts_its_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from qgtm.engine.backtest.service import BacktestService

    engine = research_engine(tmp_path)
    held: list[threading.Thread] = []
    try:
        service = BacktestService(engine)
        monkeypatch.setattr(threading.Thread, "start", lambda self: held.append(self))
        job = service.run("tsmom")
        monkeypatch.undo()
        assert job.state == "queued" and len(held) == 1  # its worker thread not started
        assert service.cancel(job.job).state == "cancelled"
        held[0].run()  # the worker thread's body, now: it must see the cancel and stop
        assert service.status(job.job).state == "cancelled"
        names = [p.name for p in multiprocessing.active_children()]
        assert f"qgtm-backtest-{job.job}" not in names
    finally:
        engine.close()


def test_a_job_names_its_default_window_and_counts_its_sessions_from_the_start(
    tmp_path: Path,
) -> None:
    """No dates: all processed sessions after the strategy's warm-up; the total is known
    when the job is queued (the screen showed 0/0 until the process reported)."""
    engine = research_engine(tmp_path)
    try:
        processed = engine.panel.history_before(engine.next_index)
        warmup = create("tsmom").warmup
        job = engine.call("backtest.run", strategy="tsmom")
        engine.call("backtest.cancel", job=job.job)
        assert job.request["window"] == [
            processed.dates[warmup + 1].isoformat(),
            processed.dates[-1].isoformat(),
        ]
        assert job.total == job.request["sessions"] == len(processed) - warmup - 1
        with pytest.raises(BacktestError, match="no sessions to trade"):
            engine.call("backtest.run", strategy="tsmom", start="2010-02-01")
    finally:
        engine.close()


def test_a_short_run_carries_a_window_warning_and_a_long_one_none(tmp_path: Path) -> None:
    engine = research_engine(tmp_path)
    try:
        status = _finished(engine, engine.call("backtest.run", strategy="donchian_20"))
        assert status.result["report"]["sessions"] >= 252
        assert status.result["warnings"] == []
        short = _finished(engine, engine.call("backtest.run", strategy="tsmom", start="2009-11-02"))
        sessions = short.result["report"]["sessions"]
        assert sessions < 60
        assert short.result["warnings"] == [short_window_warning(sessions)]
    finally:
        engine.close()


def _finished(engine, job):
    deadline = time.monotonic() + 60
    status = engine.call("backtest.status", job=job.job)
    while status.state not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
        status = engine.call("backtest.status", job=job.job)
    assert status.state == "done", status.error
    return status
