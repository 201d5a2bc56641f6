"""The league: every registered strategy backtested over one panel, one per worker
process, ranked by Sharpe. `qgtm backtest --all` renders the rows it returns.

The default decision is "signal" (a quick ranking): the live decision costs about
0.2-0.6 ms a session, which makes the league about twice as long (bench/README.md).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from qgtm.core.backtest import BacktestError
from qgtm.core.config import Config
from qgtm.core.processes import worker_pool
from qgtm.engine.backtest.api import (
    run_backtest,
    save_artifacts,
    settings_from_config,
    strategy_names,
)
from qgtm.engine.backtest.decision import regime_cache_for, use_regime_cache
from qgtm.engine.backtest.market import sectors_of
from qgtm.engine.backtest.result import BacktestSettings
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import StrategyContext

_WORKER: dict[str, Any] = {}
"""The league worker's panel, settings and sectors, sent once per process."""


def league_settings(config: Config, decision: str = "signal") -> BacktestSettings:
    """The settings every strategy of the league runs with: the whole panel, `decision`."""
    return replace(settings_from_config(config, None, None), decision=decision)


def _league_init(
    panel: PricePanel,
    settings: Any,
    sectors: dict[str, str],
    data_dir: Path,
    context: StrategyContext | None = None,
) -> None:
    _WORKER.update(
        panel=panel, settings=settings, sectors=sectors, data_dir=data_dir, context=context
    )
    use_regime_cache(regime_cache_for(data_dir))


def _league_row(name: str) -> dict[str, Any]:
    """One strategy's vectorised backtest over the league's panel (runs in a worker)."""
    try:
        outcome = run_backtest(
            _WORKER["panel"],
            name,
            _WORKER["settings"],
            runner="vector",
            sector_of=_WORKER["sectors"],
            context=_WORKER.get("context"),
        )
    except BacktestError as exc:
        return {"strategy": name, "error": str(exc)}
    save_artifacts(outcome, _WORKER["data_dir"])
    return {
        "strategy": name,
        "cagr": outcome.report.cagr,
        "sharpe": outcome.report.sharpe,
        "max_drawdown": outcome.report.max_drawdown,
        "psr": outcome.validation.get("psr_vs_zero", 0.0),
        "trades": len(outcome.result.trades),
        "kill_switch": outcome.report.kill_switch,
        "kill_spells": outcome.report.kill_spells,
    }


def run_league(
    settings: BacktestSettings,
    data_dir: Path,
    panel: PricePanel,
    context: StrategyContext | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Every registered strategy, one per worker process (as many as there are cores),
    best Sharpe first; a strategy that cannot run is a row with its `error`."""
    init = (panel, settings, sectors_of(panel), data_dir, context)
    names = strategy_names()
    rows = []
    workers = max(1, min(os.cpu_count() or 1, len(names)))
    with worker_pool(workers, _league_init, init) as pool:
        for n, row in enumerate(pool.imap(_league_row, names)):
            rows.append(row)
            if progress is not None:
                progress(n + 1, len(names))
    rows.sort(key=lambda r: -r.get("sharpe", -math.inf))
    return rows
