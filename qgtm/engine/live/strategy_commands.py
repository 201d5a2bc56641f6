"""Engine commands that show the strategy library to clients (terminal, attach socket).

- `strategies.list`: every registered strategy with its declarations, its live status
  in the engine (active today, filtered by today's regime, or not configured) and where
  each macro/COT input comes from (`inputs`: {"DFII10": "FRED"} or "demo fallback";
  `data`: the one-line summary, "macro: FRED" or "macro: demo fallback");
- `strategies.signals` (strategy=, limit=): the newest signals one strategy recorded in
  state.sqlite.
Results are the core structs `StrategyInfo` and `SignalRecord`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from qgtm.core.results import SignalRecord, StrategyInfo
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.features.pit_features import AUX_FEATURES, ContextCache, summarise_inputs
from qgtm.engine.state import StateStore
from qgtm.engine.strategies.base import BaseStrategy
from qgtm.engine.strategies.registry import STRATEGIES, UnknownStrategyError

if TYPE_CHECKING:  # the aggregator sits above the strategies (types only)
    from qgtm.engine.portfolio.aggregator import Aggregation

NOT_CONFIGURED = "not configured"


class _Engine(Protocol):
    """What these commands use of the engine (so this module needs no engine import)."""

    strategies: list[BaseStrategy]
    last_aggregation: Aggregation | None
    strategy_inputs: ContextCache
    state: StateStore

    regime: str | None

    def bind(self, name: str, handler: Callable[..., Any], *, step_lock: bool = True) -> None: ...


def describe(cls: type[BaseStrategy]) -> dict[str, Any]:
    """A strategy's declarations as plain data (defaults of an instance for the warm-up)."""
    instance = cls()
    return {
        "name": cls.name,
        "family": cls.family,
        "description": cls.description,
        "reference": cls.reference,
        "parameters": [
            {
                "name": p.name,
                "default": p.default,
                "low": p.low,
                "high": p.high,
                "description": p.description,
            }
            for p in cls.parameters
        ],
        "factor_exposures": dict(cls.factor_exposures),
        "capacity_usd": cls.capacity_usd,
        "features": list(cls.features),
        "regimes": list(cls.regimes),
        "warmup": instance.warmup,
    }


def input_sources(cls: type[BaseStrategy], context: StrategyContext) -> dict[str, str]:
    """Each macro/COT input of `cls` -> "FRED", "CFTC" or "demo fallback" in `context`."""
    return {f: context.source_of(f) for f in cls.features if f in AUX_FEATURES}


def live_status(engine: _Engine, name: str) -> str:
    """'active', 'filtered: <reason>' or 'not configured' for the latest decision."""
    configured = {s.name for s in engine.strategies}
    if name not in configured:
        return NOT_CONFIGURED
    aggregation = engine.last_aggregation
    if aggregation is not None:
        for status in aggregation.statuses:
            if status.strategy == name:
                return "active" if status.status == "active" else f"filtered: {status.reason}"
    strategy = next(s for s in engine.strategies if s.name == name)
    if not strategy.trades_in(engine.regime):
        return f"filtered: regime {engine.regime}"
    return "active"


def register_strategy_commands(engine: _Engine) -> None:
    """Register `strategies.list` and `strategies.signals` on `engine`."""

    def list_strategies() -> list[StrategyInfo]:
        rows = []
        context = engine.strategy_inputs.get()
        for name, cls in sorted(STRATEGIES.items()):
            row = describe(cls)
            row["status"] = live_status(engine, name)
            row["inputs"] = input_sources(cls, context)
            row["data"] = summarise_inputs(row["inputs"])  # "macro: FRED" / "... demo fallback"
            rows.append(msgspec.convert(row, StrategyInfo))
        return rows

    def signals(strategy: str, limit: int) -> list[SignalRecord]:
        if strategy not in STRATEGIES:
            raise UnknownStrategyError(strategy)
        rows = engine.state.conn.execute(
            "SELECT as_of, symbol, side, weight, confidence, rationale FROM signals "
            "WHERE strategy = ? ORDER BY as_of DESC, symbol LIMIT ?",
            (strategy, int(limit)),
        ).fetchall()
        return [
            SignalRecord(strategy, date.fromisoformat(r[0]), r[1], r[2], r[3], r[4], r[5])
            for r in rows
        ]

    engine.bind("strategies.list", list_strategies)
    engine.bind("strategies.signals", signals)
