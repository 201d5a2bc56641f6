"""Vectorised runner: whole-history signal, volatility and ADV arrays, then one tight
booking pass with the same rules and roundings as the event-driven runner.

Signals come from `strategy.signal_matrix(panel)` when the strategy offers one (row i
uses bars before i only), otherwise from `generate` on each point-in-time history, so
every registered strategy runs here. Allocation, risk (`check_targets`), share
rounding (`target_quantity`, `skip_small_trade`), fill prices and commissions
(`fill_price`, `commission`) and the kill switch are the same pure functions the live
engine uses; positions and equity therefore match the event-driven runner exactly
(tests/engine/backtest/test_equivalence.py checks 1e-9 relative).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from qgtm.core.enums import KillTier
from qgtm.engine.backtest.costs import adv_matrix
from qgtm.engine.backtest.event_driven import Progress
from qgtm.engine.backtest.result import (
    BacktestResult,
    BacktestSettings,
    Trade,
    money_matrix,
    session_window,
)
from qgtm.engine.data.store import PricePanel
from qgtm.engine.execution.brokers.paper import commission, fill_price
from qgtm.engine.execution.oms import skip_small_trade, target_quantity
from qgtm.engine.portfolio.allocator import TRADING_DAYS, VOL_WINDOW
from qgtm.engine.risk.killswitch import escalate, tier_for
from qgtm.engine.risk.manager import check_targets
from qgtm.engine.strategies.base import BaseStrategy


def netted_signals(panel: PricePanel, strategies: Sequence[BaseStrategy]) -> np.ndarray:
    """sum_k side_k * max(confidence_k, 1e-9) per session and symbol (NaN: no signal).

    Row i is what the strategies say on session i from bars before i.
    """
    if len(strategies) == 1 and hasattr(strategies[0], "signal_matrix"):
        return np.asarray(strategies[0].signal_matrix(panel), dtype=float)
    out = np.full(panel.close.shape, np.nan)
    column = {s: j for j, s in enumerate(panel.symbols)}
    for i in range(1, len(panel)):
        history = panel.history_before(i)
        for strategy in strategies:
            if len(history) < strategy.warmup:
                continue
            for signal in strategy.generate(history, panel.dates[i]):
                j = column[signal.symbol]
                base = 0.0 if np.isnan(out[i, j]) else out[i, j]
                out[i, j] = base + signal.side.sign * max(signal.confidence, 1e-9)
    return out


def vol_matrix(close: np.ndarray) -> np.ndarray:
    """realised_vols known at each session i (rows before i); NaN when too short."""
    sessions, symbols = close.shape
    log_returns = np.diff(np.log(close), axis=0)
    out = np.full((sessions, symbols), np.nan)
    for i in range(3, min(VOL_WINDOW + 1, sessions)):
        out[i] = log_returns[: i - 1].std(axis=0, ddof=1) * np.sqrt(TRADING_DAYS)
    if sessions > VOL_WINDOW + 1:
        windows = sliding_window_view(log_returns, VOL_WINDOW, axis=0)  # (k, symbols, 63)
        sigma = windows.std(axis=2, ddof=1) * np.sqrt(TRADING_DAYS)
        out[VOL_WINDOW + 1 :] = sigma[: sessions - VOL_WINDOW - 1]
    return out


def target_matrix(netted: np.ndarray, vols: np.ndarray, gross_target: float) -> np.ndarray:
    """inverse_vol_weights on every row: sign_i * (1/sigma_i) / sum_active(1/sigma) * gross."""
    active = np.isfinite(netted) & (netted != 0) & (np.nan_to_num(vols) > 0)
    inverse = np.where(active, 1.0 / np.where(active, vols, 1.0), 0.0)
    total = np.cumsum(inverse, axis=1)[:, -1:]  # left-to-right, as the allocator adds
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = np.sign(netted) * (inverse / total) * gross_target
    return np.where(active, weights, np.nan)


def run_vectorised(
    panel: PricePanel,
    strategies: Sequence[BaseStrategy],
    settings: BacktestSettings,
    progress: Progress | None = None,
    targets: np.ndarray | None = None,
) -> BacktestResult:
    """The event-driven backtest's positions and equity from precomputed arrays.

    `targets` (sessions x symbols, NaN = no target) skips the signal step, which is how a
    parameter sweep reuses this pass.
    """
    warmup = max((s.warmup for s in strategies), default=0)
    first, last = session_window(panel, settings, warmup)
    if targets is None:
        targets = target_matrix(
            netted_signals(panel, strategies), vol_matrix(panel.close), settings.gross_target
        )
    opens, closes = money_matrix(panel.open), money_matrix(panel.close)
    adv = adv_matrix(panel.volume)
    symbols = panel.symbols
    order = sorted(range(len(symbols)), key=lambda j: symbols[j])
    costs = settings.costs
    slippage = Decimal(str(costs.slippage_bps))
    cash = settings.initial_cash
    held = [0] * len(symbols)
    tier = KillTier.NORMAL
    prev_equity = peak = settings.initial_cash
    pending: list[tuple[int, int, Decimal]] = []  # (symbol index, signed qty, impact bps)
    n = last - first
    equity_out, cash_out = np.zeros(n), np.zeros(n)
    positions = np.zeros((n, len(symbols)), dtype=np.int64)
    trades: list[Trade] = []
    tiers: list[str] = []
    for row, i in enumerate(range(first, last)):
        day = panel.dates[i]
        for j, qty, impact in pending:
            sign = 1 if qty > 0 else -1
            price = fill_price(opens[i][j], sign, slippage + impact)
            fee = commission(costs.commission_per_share, abs(qty))
            cash -= price * qty + fee
            held[j] += qty
            trades.append(Trade(day, symbols[j], qty, price, fee))
        pending = []
        marks = closes[i - 1]
        equity = cash + sum((marks[j] * q for j, q in enumerate(held) if q), Decimal(0))
        current = (
            {symbols[j]: float(marks[j] * q / equity) for j, q in enumerate(held) if q}
            if equity > 0
            else {}
        )
        wanted: dict[str, float] = {}
        if tier < KillTier.FLATTEN:
            row_targets = targets[i]
            wanted = {symbols[j]: float(w) for j, w in enumerate(row_targets) if w == w}
        approved, _ = check_targets(wanted, current, tier, settings.risk)
        for j in order:
            symbol = symbols[j]
            if symbol not in approved and not held[j]:
                continue
            target_qty = target_quantity(approved.get(symbol, 0.0), equity, marks[j])
            delta = target_qty - held[j]
            if skip_small_trade(target_qty, delta, marks[j], settings.min_trade_value):
                continue
            pending.append((j, delta, costs.impact_bps(abs(delta), int(adv[i, j]))))
        marks = closes[i]
        short_value = sum((-marks[j] * q for j, q in enumerate(held) if q < 0), Decimal(0))
        cash -= costs.borrow_charge(short_value)
        equity = cash + sum((marks[j] * q for j, q in enumerate(held) if q), Decimal(0))
        if settings.kill_switch:
            peak = max(peak, equity)
            drawdown = float((peak - equity) / peak)
            called = tier_for(
                float(equity - prev_equity), float(prev_equity), drawdown, settings.risk
            )
            new_tier = escalate(tier, called)
            if new_tier >= KillTier.FLATTEN > tier:
                pending = [(j, -held[j], Decimal(0)) for j in order if held[j]]
            tier = new_tier
        prev_equity = equity
        equity_out[row] = float(equity)
        cash_out[row] = float(cash)
        positions[row] = held
        tiers.append(tier.name)
        if progress is not None and (row % 64 == 0 or row == n - 1):
            progress(row + 1, n)
    return BacktestResult(
        dates=panel.dates[first:last],
        symbols=symbols,
        equity=equity_out,
        cash=cash_out,
        positions=positions,
        closes=np.array([[float(p) for p in closes[i]] for i in range(first, last)]),
        trades=trades,
        kill_tiers=tiers,
        meta={"initial_cash": str(settings.initial_cash), "runner": "vectorised"},
    )
