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


def time_strategy(name: str) -> tuple[str, float, int, int]:
    """(name, seconds, calls, signals) for one pass over the panel."""
    assert _PANEL is not None
    panel = _PANEL
    strategy = create(name)
    start = time.perf_counter()
    calls = signals = 0
    for index in range(strategy.warmup, len(panel)):
        signals += len(strategy.generate(panel.history_before(index), panel.dates[index]))
        calls += 1
    return name, time.perf_counter() - start, calls, signals


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
    baseline = next(r for r in results if r[0] == "tsmom")[1]
    print(f"{'strategy':<18} {'seconds':>8} {'calls':>6} {'ms/call':>8} {'x tsmom':>8}")
    for name, seconds, calls, _ in sorted(results, key=lambda r: -r[1]):
        per_call = 1e3 * seconds / max(calls, 1)
        print(f"{name:<18} {seconds:8.2f} {calls:6d} {per_call:8.3f} {seconds / baseline:8.2f}")
    slowest = max(results, key=lambda r: r[1])
    total = sum(r[1] for r in results)
    print(
        f"\n{len(results)} strategies, {total:.1f} s of generate in total, "
        f"wall {wall:.1f} s on {args.workers} workers (including the demo market build); "
        f"slowest {slowest[0]} {slowest[1]:.2f} s = {slowest[1] / baseline:.1f} x tsmom"
    )


if __name__ == "__main__":
    main()
