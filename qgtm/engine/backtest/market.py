"""The bars and strategy inputs a backtest outside the engine runs on.

`qgtm backtest` reads them from the data directory's market store or from the user's
own file. While a running engine holds market.duckdb (DuckDB opens a file in one
process only) `load_market` raises MarketHeldError, and the CLI borrows the engine's
bars over its attach socket instead (`backtest.market`, service.pack_market). What a
user should know about where the bars came from is returned as `notes`; the caller
decides how to show it (the engine prints nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from qgtm.core.backtest import BacktestError
from qgtm.core.config import Config
from qgtm.core.universe import load_universe
from qgtm.engine.data.store import MarketStore, PricePanel
from qgtm.engine.data.user_bars import load_user_bars, summary_lines, to_panel
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.features.pit_features import store_context
from qgtm.engine.features.store import FeatureStore


class MarketHeldError(BacktestError):
    """market.duckdb is open in a running engine: ask that engine for its bars."""


@dataclass(frozen=True, slots=True)
class BacktestMarket:
    """A backtest's bars, the macro/COT inputs (None: the demo fallback) and what a user
    should be told about where they came from."""

    panel: PricePanel
    context: StrategyContext | None
    notes: list[str] = field(default_factory=list)


def load_market(config: Config, data_dir: Path, data_file: Path | None) -> BacktestMarket:
    """The bars, and the macro/COT inputs the live engine would give the strategies.

    With the data directory's market store: the panel and `store_context` over its
    sessions (the FRED/CFTC series the store holds, point in time, as the live engine's
    ContextCache builds it; None when the store holds none: the demo fallback). With the
    user's own file: its bars and None.
    """
    if data_file is not None:
        bars = load_user_bars(data_file)
        return BacktestMarket(to_panel(bars.bars), None, summary_lines(bars, limit=5))
    universe = load_universe()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store = MarketStore(data_dir)
    except duckdb.IOException:
        raise MarketHeldError(f"{data_dir}/market.duckdb is held by a running engine") from None
    try:
        store.ensure_demo(universe, config.demo)
        panel = store.load_panel(universe.symbols)
        context = store_context(FeatureStore(store.connection), panel.dates)
        return BacktestMarket(panel, None if context.source == "demo" else context)
    finally:
        store.close()


def sectors_of(panel: PricePanel) -> dict[str, str]:
    """Each symbol's sector in the universe; 'user' for a symbol of the user's own bars."""
    universe = load_universe()
    return {s: universe.sector_of(s) if s in universe.symbols else "user" for s in panel.symbols}
