"""Time `generate` for every registered strategy over the full demo market.

Each strategy is called once per decision session, from its warm-up to the last session,
exactly as a daily backtest drives it (history = bars before the session). Reports the
seconds per strategy, the slowest, the ratio to `tsmom` (the baseline in the same run),
and the wall time of the whole library on `--workers` processes.

    .venv/bin/python bench/strategies_speed.py            # full demo market, 2 workers
    .venv/bin/python bench/strategies_speed.py --end 2012-12-31 --workers 1
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date

import numpy as np

from qgtm.core.config import DemoConfig
from qgtm.core.universe import load_universe
from qgtm.engine.data.demo import generate_demo_market
from qgtm.engine.data.store import PricePanel
from qgtm.engine.strategies.registry import STRATEGIES, create

_PANEL: PricePanel | None = None


def demo_panel(end: date) -> PricePanel:
    """The default demo market (seed and start from DemoConfig) up to `end`."""
    demo = DemoConfig()
    universe = load_universe()
    market = generate_demo_market(universe, demo.start, end, demo.seed)
    fields = {}
    for name in ("open", "high", "low", "close", "volume"):
        wide = market.bars.pivot(on="symbol", index="date", values=name).sort("date")
        fields[name] = np.ascontiguousarray(wide.select(universe.symbols).to_numpy(), float)
    return PricePanel(tuple(wide["date"].to_list()), universe.symbols, **fields)


def _init(end: date) -> None:
    global _PANEL
    _PANEL = demo_panel(end)


def time_strategy(name: str) -> tuple[str, float, int, float]:
    """(name, wall seconds, calls, CPU seconds) for one pass over the panel. CPU time is
    reported too because wall time inflates on a shared machine."""
    assert _PANEL is not None
    panel = _PANEL
    strategy = create(name)
    start, cpu = time.perf_counter(), time.process_time()
    calls = 0
    for index in range(strategy.warmup, len(panel)):
        strategy.generate(panel.history_before(index), panel.dates[index])
        calls += 1
    return name, time.perf_counter() - start, calls, time.process_time() - cpu


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--end", type=date.fromisoformat, default=DemoConfig().end)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    wall = time.perf_counter()
    with ProcessPoolExecutor(args.workers, initializer=_init, initargs=(args.end,)) as pool:
        results = list(pool.map(time_strategy, sorted(STRATEGIES)))
    wall = time.perf_counter() - wall
    baseline = next(r for r in results if r[0] == "tsmom")[3]
    header = f"{'strategy':<18} {'wall s':>7} {'cpu s':>7} {'calls':>6} {'cpu ms/call':>11}"
    print(f"{header} {'x tsmom':>8}")
    for name, seconds, calls, cpu in sorted(results, key=lambda r: -r[3]):
        per_call = 1e3 * cpu / max(calls, 1)
        print(
            f"{name:<18} {seconds:7.2f} {cpu:7.2f} {calls:6d} {per_call:11.3f} "
            f"{cpu / baseline:8.2f}"
        )
    slowest = max(results, key=lambda r: r[3])
    total_wall = sum(r[1] for r in results)
    total_cpu = sum(r[3] for r in results)
    print(
        f"\n{len(results)} strategies: generate took {total_cpu:.1f} s CPU "
        f"({total_wall:.1f} s wall) in total; whole run {wall:.1f} s wall on {args.workers} "
        f"workers including the demo market build; slowest {slowest[0]} {slowest[3]:.2f} s "
        f"CPU = {slowest[3] / baseline:.1f} x tsmom"
    )


if __name__ == "__main__":
    main()
