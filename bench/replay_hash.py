"""State hashes of a demo replay and of backtests: the proof that a refactor kept behaviour.

Run it before a change and after it; every hash must be identical (issue 22). It prints
one SHA-256 per part and one over all of them:

- `replay`: the live TradingEngine replaying N demo sessions (default 2,000) in a
  temporary data directory, as `qgtm --daemon --sessions N --speed 0` does, then the
  book's state: orders, fills, positions, equity rows, signals, risk events, outbox
  payloads, strategy sleeves, the audit chain (sequence, simulated time, event, actor,
  payload: no wall-clock column), and the engine's cash, peak equity and kill tier.
- `replay-3`: the same with three strategies, ERC allocation and the Kelly cap (the
  parity test's second world), fewer sessions.
- `event:*` / `vector:*`: the event-driven and vectorised runners over the replay's
  panel (equity, cash, positions, trades, kill tiers), with the live and the quick
  "signal" decision, the kill switch holding and resetting daily.
- `backtest:tsmom`: `run_backtest`'s report (what `qgtm backtest tsmom --json` prints,
  minus the artifact path and the hash of the engine's source files).

    PYTHONPATH=. .venv/bin/python bench/replay_hash.py [--sessions 2000] [--only replay]
        [--start 2009-01-13]

Takes a few minutes on 2 cores (the replay dominates).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from qgtm.core.config import Config, EngineConfig, LearnConfig, PortfolioConfig
from qgtm.core.types import RiskLimits
from qgtm.core.universe import load_universe
from qgtm.engine.backtest.api import run_backtest, settings_from_config
from qgtm.engine.backtest.event_driven import run_event_driven
from qgtm.engine.backtest.result import BacktestResult
from qgtm.engine.backtest.vectorised import run_vectorised
from qgtm.engine.data.store import MarketStore, PricePanel
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.strategies.registry import create

# what each table contributes (wall-clock columns left out: created_at of an order on
# the wall clock, the audit's recorded_at, the outbox's issued_at and sending state)
BOOK_QUERIES = {
    "orders": "SELECT client_order_id, decision_date, symbol, side, quantity, order_type, "
    "status, reason, filled_quantity, avg_fill_price, filled_on FROM orders "
    "ORDER BY client_order_id",
    "fills": "SELECT * FROM fills ORDER BY fill_id",
    "positions": "SELECT * FROM positions ORDER BY symbol",
    "equity": "SELECT * FROM equity ORDER BY session",
    "signals": "SELECT * FROM signals ORDER BY strategy, as_of, symbol",
    "risk_events": "SELECT at, kind, tier, symbol, detail FROM risk_events ORDER BY id",
    "outbox": "SELECT seq, id, kind, payload FROM outbox ORDER BY seq",
    "sleeves": "SELECT * FROM strategy_sleeves ORDER BY session_index, strategy",
    "audit": "SELECT seq, sim_time, event, actor, payload FROM audit ORDER BY seq",
}


BACKTEST_WINDOW = (date(2009, 3, 2), date(2012, 2, 29))  # about 750 sessions, 3 years


def digest(parts: Iterable[Any]) -> str:
    """SHA-256 over the JSON text of each part (sorted keys; str() for what JSON lacks)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()


def book_state(engine: TradingEngine) -> dict[str, Any]:
    """The replayed book as plain rows (see BOOK_QUERIES) plus the engine's own state."""
    conn = sqlite3.connect(engine.state.path)
    try:
        rows = {name: conn.execute(sql).fetchall() for name, sql in BOOK_QUERIES.items()}
    finally:
        conn.close()
    rows["engine"] = [
        str(engine.book.cash),
        str(engine.risk.peak_equity),
        engine.kill_tier.name,
        str(engine.prev_equity),
        engine.next_index,
    ]
    return rows


def replay(config: Config, sessions: int) -> tuple[dict[str, Any], PricePanel]:
    """Replay `sessions` demo sessions in a temporary data directory; the book's state."""
    with tempfile.TemporaryDirectory(prefix="qgtm-replay-") as tmp:
        engine = TradingEngine(config, Path(tmp))
        try:
            for _ in range(sessions):
                if not engine.step():
                    break
            return book_state(engine), engine.panel
        finally:
            engine.close()


def demo_panel(config: Config) -> PricePanel:
    """The demo market the replay trades (built in a temporary data directory)."""
    with tempfile.TemporaryDirectory(prefix="qgtm-market-") as tmp:
        store = MarketStore(Path(tmp))
        try:
            store.ensure_demo(load_universe(), config.demo)
            return store.load_panel(load_universe().symbols)
        finally:
            store.close()


def result_parts(result: BacktestResult) -> list[Any]:
    """A backtest result as hashable parts (floats by their exact hex text)."""
    return [
        [d.isoformat() for d in result.dates],
        [float(x).hex() for x in result.equity],
        [float(x).hex() for x in result.cash],
        result.positions.astype(np.int64).tolist(),
        [
            (t.day.isoformat(), t.symbol, t.quantity, str(t.price), str(t.commission))
            for t in result.trades
        ],
        list(result.kill_tiers),
    ]


def three_strategies(config: Config) -> Config:
    """The parity test's second world: three strategies, ERC, Kelly cap, sector limit."""
    return replace(
        config,
        engine=replace(config.engine, strategies=("tsmom", "tsmom_3m", "xsmom_6m")),
        portfolio=PortfolioConfig(method="erc"),
        risk=RiskLimits(kelly_min_obs=20, vol_target=0.08, max_sector_weight=0.15),
    )


def backtests(panel: PricePanel, config: Config) -> dict[str, Callable[[], list[Any]]]:
    """Named backtest runs over `panel` (each returns its hashable parts)."""
    start, end = BACKTEST_WINDOW
    jobs: dict[str, Callable[[], list[Any]]] = {}
    worlds = {"tsmom": config, "three": three_strategies(config)}
    for world, cfg in worlds.items():
        names = cfg.engine.strategies
        base = settings_from_config(cfg, start, end)
        variants = {
            "live": base,
            "signal": replace(base, decision="signal"),
            "daily": replace(
                base, kill_reset="daily", risk=replace(base.risk, daily_loss_limit=0.004)
            ),
            "tight": replace(base, risk=replace(base.risk, max_drawdown_pct=0.03)),
        }
        for label, settings in variants.items():

            def event(settings=settings, names=names) -> list[Any]:
                return result_parts(run_event_driven(panel, [create(n) for n in names], settings))

            def vector(settings=settings, names=names) -> list[Any]:
                return result_parts(run_vectorised(panel, [create(n) for n in names], settings))

            def python(settings=settings, names=names) -> list[Any]:
                return result_parts(
                    run_vectorised(panel, [create(n) for n in names], settings, compiled=False)
                )

            jobs[f"event:{world}:{label}"] = event
            jobs[f"vector:{world}:{label}"] = vector
            if settings.decision == "signal":
                jobs[f"vector-python:{world}:{label}"] = python

    def report() -> list[Any]:
        settings = settings_from_config(config, start, end)
        outcome = run_backtest(panel, "tsmom", settings)
        summary = outcome.summary()
        summary.pop("artifact", None)
        summary["config"].pop("code", None)  # the hash of the engine's source files
        return [summary]

    jobs["backtest:tsmom"] = report
    return jobs


def main(argv: Sequence[str] | None = None) -> int:
    """Print every part's hash and the hash over all of them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--sessions-3", type=int, default=400, help="sessions of replay-3")
    parser.add_argument("--only", nargs="*", default=None, help="parts whose name starts so")
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=None,
        metavar="YYYY-MM-DD",
        help="first replayed session ([engine] start). A new demo book replays from 2013 "
        "since issue 21 (five years of history for Research); c8881ed's default start was "
        "2009-01-13, so pass that to compare with hashes taken before that change",
    )
    args = parser.parse_args(argv)
    config = replace(Config(), engine=EngineConfig(speed=0, start=args.start))
    hashes: dict[str, str] = {}

    def wanted(name: str) -> bool:
        return args.only is None or any(name.startswith(p) for p in args.only)

    def timed(name: str, job: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        out = job()
        print(f"  {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        return out

    if wanted("replay"):
        state, panel = timed("replay", lambda: replay(config, args.sessions))
        for table, rows in state.items():
            hashes[f"replay.{table}"] = digest(rows)
        hashes["replay"] = digest([state[k] for k in sorted(state)])
    else:
        panel = demo_panel(config)
    if wanted("replay-3"):
        learn_off = replace(three_strategies(config), learn=LearnConfig(enabled=False))
        state3, _ = timed("replay-3", lambda: replay(learn_off, args.sessions_3))
        hashes["replay-3"] = digest([state3[k] for k in sorted(state3)])
    for name, job in backtests(panel, config).items():
        if wanted(name.split(":")[0]) or wanted(name):
            hashes[name] = digest(timed(name, job))
    for name, value in hashes.items():
        print(f"{value}  {name}")
    print(f"{digest(sorted(hashes.items()))}  ALL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
