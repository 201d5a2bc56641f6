"""Key-press latency of the terminal while the engine replays at full speed under CPU load.

Measures, for each key press, the time from the press being sent (the way the terminal
driver sends it) to the bound action running on the app's event loop, in scenarios run
back to back. Presses come at random 20-80 ms gaps, without waiting for the app to be
idle, so they land anywhere in the frames a fast replay causes:

  baseline        engine paused, nothing else running
  replay          engine replaying at speed 0 (as fast as possible)
  replay+process  replay plus a CPU-heavy job in a ProcessPoolExecutor (how QGTM runs
                  backtests: CPU work goes to an executor, DESIGN.md)
  replay+thread   replay plus the same CPU job in a thread of this process (worst case:
                  the job competes for the GIL)

Run:  .venv/bin/python bench/key_latency.py [--presses 200] [--hogs 2] [--engine-nice 0]
Target: p99 < 100 ms in every scenario. `--engine-nice 0 --no-gc-freeze` turns off the two
process-level measures (qgtm.engine.live.inprocess.ENGINE_THREAD_NICE, qgtm.tui.latency) to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import random
import statistics
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from textual import events
from textual.binding import Binding, BindingType

import qgtm.engine.live.inprocess as client_module
import qgtm.tui.latency as latency_module
from qgtm.core.config import Config, EngineConfig
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.live.inprocess import InProcessClient
from qgtm.tui.app import QGTMApp

TARGET_MS = 100.0
SCENARIOS = ("baseline", "replay", "replay+process", "replay+thread")


def cpu_job(seconds: float) -> int:
    """A stand-in backtest: pure-Python arithmetic for `seconds`."""
    end = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < end:
        for i in range(10_000):
            total += i * i % 7
    return total


class TimedApp(QGTMApp):
    """The real terminal plus one key whose action notes when it ran."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *QGTMApp.BINDINGS,
        Binding("z", "mark", "Mark", show=False),
    ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.marks: list[float] = []

    def action_mark(self) -> None:
        self.marks.append(time.perf_counter())


async def press_and_time(app: TimedApp) -> float:
    """Send one `z` through the driver, as a terminal would; ms until its action ran."""
    count = len(app.marks)
    key = events.Key("z", "z")
    key.set_sender(app)
    sent = time.perf_counter()
    app._driver.send_message(key)
    while len(app.marks) == count:
        await asyncio.sleep(0.0005)
    return (app.marks[-1] - sent) * 1000


async def measure(
    data_dir: Path, scenario: str, presses: int, size: tuple[int, int]
) -> list[float]:
    config = replace(Config(), engine=EngineConfig(speed=0.0))
    engine = TradingEngine(config, data_dir)
    if scenario == "baseline":
        engine.pause()
    app = TimedApp(InProcessClient(engine), data_dir=data_dir, theme_file=data_dir / "theme")
    stop = threading.Event()
    pool: concurrent.futures.Executor | None = None
    job = None
    if scenario == "replay+process":
        spawn = multiprocessing.get_context("spawn")  # no fork of a threaded process
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn)
        job = pool.submit(cpu_job, 120)
    elif scenario == "replay+thread":
        threading.Thread(target=lambda: [cpu_job(0.5) for _ in iter(stop.is_set, True)]).start()
    latencies: list[float] = []
    sessions_before = engine.snapshot().sessions_done
    try:
        gaps = random.Random(8)
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.5)
            for _ in range(presses):
                latencies.append(await press_and_time(app))
                await asyncio.sleep(gaps.uniform(0.02, 0.08))
            sessions = engine.snapshot().sessions_done - sessions_before
    finally:
        stop.set()
        if pool is not None:
            job.cancel()
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
        engine.close()
    print(f"  {scenario:<15} engine sessions during run: {sessions}")
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    """Run the scenarios and print p50/p99/max and the ratio to the baseline p50."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--only", nargs="*", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--size", default="120x40", help="terminal size, e.g. 80x24")
    parser.add_argument(
        "--engine-nice",
        type=int,
        default=client_module.ENGINE_THREAD_NICE,
        help="niceness added to the engine's threads (0: same priority as the terminal)",
    )
    parser.add_argument(
        "--hogs",
        type=int,
        default=0,
        help="extra CPU-bound processes running through every scenario (a busy machine)",
    )
    parser.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="do not freeze the start-up heap (qgtm.tui.latency), to compare",
    )
    args = parser.parse_args()
    client_module.ENGINE_THREAD_NICE = args.engine_nice
    latency_module.FREEZE_AT_START = not args.no_gc_freeze
    width, height = (int(n) for n in args.size.split("x"))
    results = {}
    hogs = [
        multiprocessing.get_context("spawn").Process(target=cpu_job, args=(3600,), daemon=True)
        for _ in range(args.hogs)
    ]
    for hog in hogs:
        hog.start()  # a busy machine: other CPU-bound work for the whole run
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        stack.callback(lambda: [hog.terminate() for hog in hogs])
        for scenario in ["baseline", *(s for s in args.only if s != "baseline")]:
            data_dir = Path(tmp) / scenario
            results[scenario] = asyncio.run(
                measure(data_dir, scenario, args.presses, (width, height))
            )
    base_p50 = statistics.median(results["baseline"])
    print(
        f"\nkey press -> action latency, {args.presses} presses each (ms), "
        f"{args.size}, engine threads nice +{args.engine_nice}, "
        f"gc freeze {'off' if args.no_gc_freeze else 'on'}, {args.hogs} extra CPU hogs"
    )
    print(f"{'scenario':<16}{'p50':>8}{'p99':>8}{'max':>8}{'p50/base':>10}  p99<{TARGET_MS:.0f}ms")
    for scenario, values in results.items():
        p50, p99 = statistics.median(values), percentile(values, 0.99)
        ok = "yes" if p99 < TARGET_MS else "NO"
        print(
            f"{scenario:<16}{p50:>8.2f}{p99:>8.2f}{max(values):>8.2f}{p50 / base_p50:>10.2f}  {ok}"
        )


if __name__ == "__main__":
    main()
