"""Event-driven runner: the live engine's components on a simulated clock.

Per session t, in this order (as TradingEngine does it):
  open   the PaperBroker fills orders decided on t-1 at t's open (+ slippage, impact);
  15:30  strategies see PricePanel.history_before(t) only; inverse_vol_weights ->
         check_targets (kill tier, caps) -> orders_for_targets at the t-1 close marks;
         the orders wait for t+1's open;
  close  mark to market, borrow fee on shorts, kill-tier update (FLATTEN replaces the
         working orders with closing orders).
No value from bar t reaches a decision taken on t, and a fill never uses the bar that
produced its signal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, time
from decimal import Decimal

import numpy as np

from qgtm.core.enums import KillTier, OrderStatus
from qgtm.engine.backtest.costs import average_daily_volume
from qgtm.engine.backtest.result import (
    BacktestResult,
    BacktestSettings,
    Trade,
    money_matrix,
    session_window,
)
from qgtm.engine.data.store import PricePanel
from qgtm.engine.execution.brokers.paper import PaperBroker
from qgtm.engine.execution.oms import orders_for_targets, strategy_set_key
from qgtm.engine.portfolio.allocator import inverse_vol_weights, realised_vols
from qgtm.engine.portfolio.book import Book
from qgtm.engine.risk.killswitch import escalate, tier_for
from qgtm.engine.risk.manager import check_targets
from qgtm.engine.strategies.base import BaseStrategy

Progress = Callable[[int, int], None]
FLATTEN_SET = "FLATTEN"


def run_event_driven(
    panel: PricePanel,
    strategies: Sequence[BaseStrategy],
    settings: BacktestSettings,
    progress: Progress | None = None,
) -> BacktestResult:
    """Replay `panel` session by session through the live components."""
    warmup = max((s.warmup for s in strategies), default=0)
    first, last = session_window(panel, settings, warmup)
    opens, closes = money_matrix(panel.open), money_matrix(panel.close)
    symbols = panel.symbols
    costs = settings.costs
    set_key = strategy_set_key(s.name for s in strategies)
    broker = PaperBroker(costs.slippage_bps, costs.commission_per_share)
    book = Book(settings.initial_cash)
    tier = KillTier.NORMAL
    prev_equity = peak = settings.initial_cash
    impact: dict[str, Decimal] = {}
    n = last - first
    equity_out, cash_out = np.zeros(n), np.zeros(n)
    positions = np.zeros((n, len(symbols)), dtype=np.int64)
    trades: list[Trade] = []
    tiers: list[str] = []
    for row, i in enumerate(range(first, last)):
        day = panel.dates[i]
        # the simulated clock: orders and fills carry the session date (UTC midnight);
        # what orders events is the loop, not a wall-clock lookup per session
        stamp = datetime.combine(day, time(), tzinfo=UTC)
        # open: yesterday's decisions fill at today's open
        for fill in broker.fill_at_open(dict(zip(symbols, opens[i], strict=True)), stamp, impact):
            book.apply_fill(fill)
            trades.append(
                Trade(day, fill.symbol, fill.signed_quantity, fill.price, fill.commission)
            )
        # 15:30: decide from bars strictly before today
        history = panel.history_before(i)
        marks = dict(zip(symbols, closes[i - 1], strict=True))
        equity = book.equity(marks)
        targets: dict[str, float] = {}
        if tier < KillTier.FLATTEN:
            signals = [s for strategy in strategies for s in strategy.generate(history, day)]
            targets = inverse_vol_weights(
                signals, realised_vols(history.close, symbols), settings.gross_target
            )
        approved, _ = check_targets(targets, book.weights(marks), tier, settings.risk)
        at = stamp
        orders = orders_for_targets(
            approved,
            book.quantities(),
            marks,
            equity,
            day,
            at,
            FLATTEN_SET if tier >= KillTier.FLATTEN else set_key,
            settings.min_trade_value,
        )
        adv = average_daily_volume(history.volume)
        column = {s: j for j, s in enumerate(symbols)}
        impact = {
            o.client_order_id: costs.impact_bps(o.quantity, int(adv[column[o.symbol]]))
            for o in orders
        }
        for order in orders:
            broker.submit(replace(order, status=OrderStatus.SUBMITTED))
        # close: mark, borrow, kill tier
        marks = dict(zip(symbols, closes[i], strict=True))
        short_value = sum(
            (-marks[s] * h.quantity for s, h in book.holdings.items() if h.quantity < 0),
            Decimal(0),
        )
        book.cash -= costs.borrow_charge(short_value)
        equity = book.equity(marks)
        if settings.kill_switch:
            peak = max(peak, equity)
            drawdown = float((peak - equity) / peak)
            called = tier_for(
                float(equity - prev_equity), float(prev_equity), drawdown, settings.risk
            )
            new_tier = escalate(tier, called)
            if new_tier >= KillTier.FLATTEN > tier:
                broker = PaperBroker(costs.slippage_bps, costs.commission_per_share)
                avg_marks = {s: h.avg_price for s, h in book.holdings.items()}
                closing = orders_for_targets(
                    {}, book.quantities(), avg_marks, Decimal(1), day, at, FLATTEN_SET, Decimal(0)
                )
                impact = {}
                for order in closing:
                    broker.submit(replace(order, status=OrderStatus.SUBMITTED))
            tier = new_tier
        prev_equity = equity
        equity_out[row] = float(equity)
        cash_out[row] = float(book.cash)
        for s, h in book.holdings.items():
            positions[row, column[s]] = h.quantity
        tiers.append(tier.name)
        if progress is not None:
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
        meta={"initial_cash": str(settings.initial_cash), "runner": "event-driven"},
    )
