"""Retrain: re-select a strategy's parameters on its training window and gate the result.

Rule strategies re-select parameters from their declared ranges; ML strategies expose
their hyper-parameters the same way and refit inside `generate` on past data only, so
one mechanism serves both. Candidates are the current production parameters plus a
seeded sample of parameter sets; each is scored on the daily returns of its own signal
portfolio over the training window. The best in-sample candidate must then pass the
validation gates: walk-forward out-of-sample Sharpe above a threshold and probability of
backtest overfitting (CSCV) at most a bound.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from qgtm.core.config import LearnConfig
from qgtm.engine.backtest.stats import sharpe_ratio
from qgtm.engine.backtest.validation import probability_of_backtest_overfitting, walk_forward
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.strategies.base import BaseStrategy
from qgtm.engine.strategies.registry import STRATEGIES

CANDIDATES = 8


class Validator(Protocol):
    """The backtest validation statistics the gates use."""

    def oos_sharpe(self, returns: np.ndarray) -> float:
        """Walk-forward out-of-sample Sharpe of picking the best column in-sample."""
        ...

    def pbo(self, returns: np.ndarray) -> float:
        """Probability of backtest overfitting of the column set (CSCV)."""
        ...


@dataclass(frozen=True, slots=True)
class BacktestValidator:
    """The gates' statistics from the backtest validation module.

    oos_sharpe: Sharpe of the stitched out-of-sample returns of a rolling walk-forward
    (pick the best in-sample column on `train` sessions, hold it for the next `test`).
    pbo: probability of backtest overfitting by CSCV over `splits` blocks.
    """

    train: int = 252
    test: int = 63
    splits: int = 8

    def oos_sharpe(self, returns: np.ndarray) -> float:
        """Walk-forward out-of-sample Sharpe of choosing the best column in-sample."""
        stitched = walk_forward(returns, self.train, self.test).oos_returns
        return sharpe_ratio(stitched) if len(stitched) > 1 else 0.0

    def pbo(self, returns: np.ndarray) -> float:
        """CSCV probability that the in-sample winner is below the median out of sample."""
        return probability_of_backtest_overfitting(returns, self.splits).pbo


@dataclass(frozen=True, slots=True)
class RetrainResult:
    """What a retrain produced: a candidate that passed the gates, or the reason it failed."""

    strategy: str
    passed: bool
    reason: str
    params: dict[str, float]
    train_start: str
    train_end: str
    metrics: dict[str, float] = field(default_factory=dict)
    data_hash: str = ""


def unit_gross_weights(
    strategy: BaseStrategy,
    history: PricePanel,
    as_of,
    context: StrategyContext | None = None,
) -> np.ndarray:
    """The strategy's signals at `as_of` as signed weights scaled to gross exposure 1.

    `context`: the macro/COT inputs (the live engine's store-backed context); None: the
    demo fallback series.
    """
    weights = np.zeros(len(history.symbols))
    for signal in strategy.generate(history, as_of, context=context):
        weights[history.symbols.index(signal.symbol)] += signal.side.sign * signal.weight
    gross = np.abs(weights).sum()
    return weights / gross if gross > 0 else weights


def signal_returns(
    strategy: BaseStrategy,
    panel: PricePanel,
    start: int,
    end: int,
    context: StrategyContext | None = None,
) -> np.ndarray:
    """Daily returns of the strategy's unit-gross signal portfolio over sessions [start, end).

    Weights decided at session t from bars before t are held from close t to close t+1:
    r_t = sum_i w_{t,i} (close_{t+1,i} / close_{t,i} - 1). Needs end < len(panel).
    """
    out = np.zeros(end - start)
    for k, t in enumerate(range(start, end)):
        history = panel.history_before(t)
        weights = unit_gross_weights(strategy, history, panel.dates[t], context)
        out[k] = float(np.sum(weights * (panel.close[t + 1] / panel.close[t] - 1.0)))
    return out


def candidate_params(
    strategy: type[BaseStrategy], current: dict[str, float], seed_text: str, count: int
) -> list[dict[str, float]]:
    """Current parameters first, then `count` seeded draws inside the declared ranges."""
    seed = int(hashlib.sha256(seed_text.encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    candidates = [dict(current)]
    for _ in range(count):
        params = {}
        for spec in strategy.parameters:
            value = float(rng.uniform(spec.low, spec.high))
            if spec.whole:  # a window or a count: whole draws (a float default stays real)
                value = float(round(value))
            params[spec.name] = min(max(value, spec.low), spec.high)
        candidates.append(params)
    return candidates


def data_hash(panel: PricePanel, start: int, end: int) -> str:
    """SHA-256 of the closes the retrain saw (first 16 hex digits)."""
    block = np.ascontiguousarray(panel.close[start : end + 1])
    return hashlib.sha256(block.tobytes()).hexdigest()[:16]


def retrain(
    name: str,
    current: dict[str, float],
    panel: PricePanel,
    session_index: int,
    config: LearnConfig,
    validator: Validator,
    context: StrategyContext | None = None,
) -> RetrainResult:
    """Re-select `name`'s parameters on the window ending at `session_index` and gate them.

    Candidates are scored with the strategies' macro/COT `context` (None: demo fallback).
    """
    cls = STRATEGIES[name]
    probe = cls(**current)
    end = session_index  # returns up to close of session_index are known now
    start = max(probe.warmup + 1, end - config.training_window)
    window = (panel.dates[start].isoformat(), panel.dates[end].isoformat())
    digest = data_hash(panel, start, end)
    if end - start < 60:
        return RetrainResult(
            name,
            False,
            "training window shorter than 60 sessions",
            current,
            *window,
            data_hash=digest,
        )
    sets = candidate_params(cls, current, f"{name}|{panel.dates[end]}", CANDIDATES)
    matrix = np.column_stack(
        [signal_returns(cls(**params), panel, start, end, context) for params in sets]
    )
    sharpes = [sharpe_ratio(matrix[:, j]) for j in range(matrix.shape[1])]
    best = int(np.argmax(sharpes))
    try:
        oos = validator.oos_sharpe(matrix)
        pbo = validator.pbo(matrix)
    except ValueError as exc:  # too little history for the validation splits
        return RetrainResult(
            name, False, f"cannot validate: {exc}", current, *window, data_hash=digest
        )
    metrics = {
        "in_sample_sharpe": sharpes[best],
        "current_in_sample_sharpe": sharpes[0],
        "oos_sharpe": oos,
        "pbo": pbo,
        "candidates": float(len(sets)),
    }
    reason = _gate(best, oos, pbo, config)
    return RetrainResult(
        name, reason == "", reason or "passed", sets[best], *window, metrics, digest
    )


def _gate(best: int, oos: float, pbo: float, config: LearnConfig) -> str:
    if best == 0:
        return "current parameters are still the best in-sample; nothing to stage"
    if oos <= config.min_oos_sharpe:
        return f"walk-forward OOS Sharpe {oos:.2f} not above {config.min_oos_sharpe:.2f}"
    if pbo > config.max_pbo:
        return f"PBO {pbo:.2f} above {config.max_pbo:.2f}"
    return ""
