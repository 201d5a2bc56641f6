"""Cost of the live engine's decision, per session, now and at a baseline git revision.

Three measurements, each in a child process (so the baseline's code and this tree's code
never share an interpreter), alternated baseline/current in the same run:
1. one ETF: `SessionDecision.decide` (allocate + every risk check, live decision) for
   SMA 10/30 on GLD with bench_peers.py's settings, µs per session;
2. the 18-ETF universe: the same for tsmom with the default settings, µs per session;
3. the live `TradingEngine.step` (SQLite state, audit, OMS, paper broker, risk manager)
   on the demo market with tsmom, ms per step.
Signals are computed before the clock starts; `current` is the previous session's
approved weights (as if filled). Times are CPU seconds (`time.process_time`).
The approved weights of 1 and 2 are hashed, so the two revisions' outputs are compared.

Run: .venv/bin/python bench/decision_speed.py [--baseline bcee1b2] [--sessions 600]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _measure(sessions: int, steps: int) -> dict:
    """Run in the child: every measurement over the code on sys.path."""
    import numpy as np

    from qgtm.core.config import Config, DemoConfig, EngineConfig, LearnConfig
    from qgtm.core.enums import KillTier
    from qgtm.core.universe import load_universe
    from qgtm.engine.backtest.decision import SessionDecision, signals_from_row
    from qgtm.engine.backtest.result import BacktestSettings
    from qgtm.engine.backtest.sma import SmaCrossover
    from qgtm.engine.backtest.vectorised import signal_matrices
    from qgtm.engine.data.store import MarketStore
    from qgtm.engine.live.engine import TradingEngine
    from qgtm.engine.strategies.registry import create

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_peers import SETTINGS as PEER_SETTINGS

    demo = DemoConfig(seed=7, start=date(2008, 1, 2), end=date(2025, 12, 31))
    universe = load_universe()
    data = Path(tempfile.mkdtemp())
    store = MarketStore(data)
    store.ensure_demo(universe, demo)
    panel = store.load_panel(universe.symbols)
    store.close()

    def decide_loop(panel, strategy, settings: BacktestSettings) -> tuple[float, int, str]:
        signals = signal_matrices(panel, [strategy], range(1, len(panel)))[strategy.name]
        decision = SessionDecision(panel, [strategy], settings)
        first = max(strategy.warmup + 1, len(panel) - sessions)
        current: dict[str, float] = {}
        digest = hashlib.sha256()
        equity = Decimal(1_000_000)
        started = time.process_time()
        for i in range(first, len(panel)):
            day = panel.dates[i]
            by = {strategy.name: signals_from_row(strategy.name, panel.symbols, signals[i], day)}
            approved = decision.decide(i, by, current, equity, equity, KillTier.NORMAL)
            current = approved
            digest.update(repr(sorted(approved.items())).encode())
        spent = time.process_time() - started
        return spent, len(panel) - first, digest.hexdigest()[:16]

    out: dict = {}
    j = panel.symbols.index("GLD")
    pick = slice(j, j + 1)
    one = replace(
        panel,
        symbols=("GLD",),
        open=panel.open[:, pick].copy(),
        high=panel.high[:, pick].copy(),
        low=panel.low[:, pick].copy(),
        close=panel.close[:, pick].copy(),
        volume=panel.volume[:, pick].copy(),
    )
    spent, n, digest = decide_loop(one, SmaCrossover(fast=10, slow=30), PEER_SETTINGS)
    out["one_etf_us"] = spent / n * 1e6
    out["one_etf_hash"] = digest
    spent, n, digest = decide_loop(panel, create("tsmom"), BacktestSettings())
    out["universe_us"] = spent / n * 1e6
    out["universe_hash"] = digest
    out["sessions"] = n

    config = replace(
        Config(),
        demo=demo,
        engine=EngineConfig(speed=0, start=date(2024, 1, 2), strategies=("tsmom",)),
        learn=LearnConfig(enabled=False),
    )
    engine = TradingEngine(config, data / "engine")
    engine.pause()
    try:
        engine.step()  # first step opens files and warms caches
        started = time.process_time()
        for _ in range(steps):
            engine.step()
        out["engine_step_ms"] = (time.process_time() - started) / steps * 1e3
        out["engine_equity"] = str(engine.book.equity(engine._marks(engine.next_index - 1)))
    finally:
        engine.close()
    out["numpy"] = np.__version__
    return out


def _child(source: Path, sessions: int, steps: int) -> dict:
    code = (
        f"import sys, json; sys.path.insert(0, {str(source)!r}); "
        f"sys.path.insert(1, {str(ROOT / 'bench')!r}); "
        "import decision_speed as d; "
        f"print('RESULT ' + json.dumps(d._measure({sessions}, {steps})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=source
    )
    if proc.returncode:
        raise SystemExit(f"measurement in {source} failed:\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=None, help="git revision to compare against")
    parser.add_argument("--sessions", type=int, default=600, help="decisions timed per case")
    parser.add_argument("--steps", type=int, default=40, help="live engine steps timed")
    parser.add_argument("--rounds", type=int, default=1, help="alternations baseline/current")
    args = parser.parse_args()
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    trees = {"current": ROOT}
    if args.baseline:
        base = Path(tempfile.mkdtemp(prefix="qgtm-baseline-"))
        archive = subprocess.run(
            ["git", "archive", args.baseline, "qgtm", "data"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        trees = {f"baseline {args.baseline}": base, "current": ROOT}
    results: dict[str, list[dict]] = {name: [] for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            results[name].append(_child(tree, args.sessions, args.steps))
    best = {name: {} for name in trees}
    for name, runs in results.items():
        for key in ("one_etf_us", "universe_us", "engine_step_ms"):
            best[name][key] = min(r[key] for r in runs)
        for key in ("one_etf_hash", "universe_hash", "engine_equity", "sessions"):
            best[name][key] = runs[0][key]
        print(name, json.dumps(best[name]))
    if args.baseline:
        old, new = best[f"baseline {args.baseline}"], best["current"]
        for key, label in (
            ("one_etf_us", "one ETF decision"),
            ("universe_us", "18-ETF decision"),
            ("engine_step_ms", "live engine step"),
        ):
            print(f"{label}: {old[key]:.1f} -> {new[key]:.1f} ({old[key] / new[key]:.2f}x faster)")
        for key in ("one_etf_hash", "universe_hash", "engine_equity"):
            print(f"{key}: {'same' if old[key] == new[key] else 'DIFFERENT'}")
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
