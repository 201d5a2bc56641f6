"""Event-driven runner: the live engine's components on a simulated clock.

Per session t, in this order (as TradingEngine does it):
  open   the PaperBroker works the orders decided on t-1 through session t
         (execute_session: market orders at the open, VWAP/TWAP children along the
         intraday curve; + slippage and half the spread) and the Book books each fill
         (plus the optional impact charge);
  15:30  strategies see PricePanel.history_before(t) only; the live engine's own
         decision function (engine/decision.decide: regime -> aggregate -> allocate ->
         run_checks -> orders_for_targets at the t-1 close marks -> select_algo on the
         mean volume), with SessionDecision as its recorder; the orders wait for t+1;
  close  mark to market, borrow fee on shorts, peak and kill-tier update
         (killswitch.book_close, as RiskManager.update_pnl; FLATTEN replaces the
         working orders with closing orders, as live/sessions.flatten_now).
No value from bar t reaches a decision taken on t, and a fill never uses the bar that
produced its signal. tests/engine/backtest/test_live_parity.py checks that this runner's
book equals the live TradingEngine's book session by session.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, time
from decimal import Decimal

import numpy as np

from qgtm.core.enums import KillTier, OrderStatus
from qgtm.engine.backtest.costs import CostModel, average_daily_volume
from qgtm.engine.backtest.decision import SessionDecision
from qgtm.engine.backtest.result import (
    BacktestResult,
    BacktestSettings,
    Trade,
    money_matrix,
    session_window,
)
from qgtm.engine.data.store import PricePanel
from qgtm.engine.decision import FLATTEN_SET, OrderRules, StrategySignals, decide
from qgtm.engine.execution.brokers.paper import PaperBroker, SessionBar
from qgtm.engine.execution.oms import orders_for_targets, strategy_set_key
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.portfolio.book import Book
from qgtm.engine.risk.killswitch import book_close
from qgtm.engine.strategies.base import BaseStrategy

Progress = Callable[[int, int], None]


def run_event_driven(
    panel: PricePanel,
    strategies: Sequence[BaseStrategy],
    settings: BacktestSettings,
    progress: Progress | None = None,
    context: StrategyContext | None = None,
) -> BacktestResult:
    """Replay `panel` session by session through the live components.

    `context` is the strategies' macro/COT input, as the live engine passes it
    (`ContextCache` over the market store); None: the seeded demo fallback series.
    """
    warmup = max((s.warmup for s in strategies), default=0)
    first, last = session_window(panel, settings, warmup)
    opens, closes = money_matrix(panel.open), money_matrix(panel.close)
    highs, lows = money_matrix(panel.high), money_matrix(panel.low)
    symbols = panel.symbols
    column = {s: j for j, s in enumerate(symbols)}
    costs = settings.costs
    set_key = strategy_set_key(s.name for s in strategies)
    broker = _broker(costs)
    decision = SessionDecision(panel, strategies, settings)
    signals = StrategySignals(strategies, decision.regime, lambda: context)
    order_rules = OrderRules(
        set_key,
        settings.min_trade_value,
        costs.adv_window,
        costs.vwap_adv_fraction,
        costs.twap_adv_fraction,
    )
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
        # the simulated clock: decisions carry the session date (UTC midnight), fills the
        # broker's own session times; what orders events is the loop
        stamp = datetime.combine(day, time(), tzinfo=UTC)
        # open: yesterday's decisions are worked through today's session
        bars = {
            o.symbol: SessionBar(
                opens[i][j], highs[i][j], lows[i][j], closes[i][j], float(panel.volume[i, j])
            )
            for o in broker.open_orders()
            for j in (column[o.symbol],)
        }
        for update in broker.execute_session(bars, day, stamp):
            fill = update.fill
            if fill is None:
                continue  # an algo's unfilled rest expired at the close
            book.apply_fill(fill)
            book.cash -= costs.impact_charge(
                fill.quantity, fill.price, impact.get(fill.client_order_id, Decimal(0))
            )
            trades.append(
                Trade(day, fill.symbol, fill.signed_quantity, fill.price, fill.commission)
            )
        broker.drain_updates()
        # 15:30: decide from bars strictly before today (the one decision function)
        history = panel.history_before(i)
        marks = dict(zip(symbols, closes[i - 1], strict=True))
        equity = book.equity(marks)
        at = stamp
        point = decision.point(
            i,
            day,
            at,
            history,
            book.weights(marks),
            equity,
            peak,
            tier,
            book.quantities(),
            marks,
        )
        planned = decide(point, signals, decision.rules, decision, order_rules).orders
        impact = {}
        if planned:  # volume statistics only matter to orders (impact)
            adv = average_daily_volume(history.volume)
            impact = {
                p.order.client_order_id: costs.impact_bps(
                    p.order.quantity, int(adv[column[p.order.symbol]])
                )
                for p in planned
            }
        for p in planned:
            broker.submit(p.order.with_status(OrderStatus.SUBMITTED, p.algo.value.lower()))
        # close: mark, borrow, kill tier
        marks = dict(zip(symbols, closes[i], strict=True))
        short_value = sum(
            (-marks[s] * h.quantity for s, h in book.holdings.items() if h.quantity < 0),
            Decimal(0),
        )
        book.cash -= costs.borrow_charge(short_value)
        equity = book.equity(marks)
        peak = max(peak, equity)
        if settings.kill_switch:
            close = book_close(tier, peak, prev_equity, equity, settings.risk, settings.kill_reset)
            if close.flatten:
                broker = _broker(costs)
                avg_marks = {s: h.avg_price for s, h in book.holdings.items()}
                closing = orders_for_targets(
                    {}, book.quantities(), avg_marks, Decimal(1), day, at, FLATTEN_SET, Decimal(0)
                )
                impact = {}
                for order in closing:
                    broker.submit(order.with_status(OrderStatus.SUBMITTED))
            tier = close.tier
        prev_equity = equity
        equity_out[row] = float(equity)
        cash_out[row] = float(book.cash)
        for s, h in book.holdings.items():
            positions[row, column[s]] = h.quantity
        tiers.append(tier.name)
        if progress is not None:
            progress(row + 1, n)
    decision.save_regimes()
    return BacktestResult.over_window(
        panel,
        (first, last),
        settings,
        "event-driven",
        equity=equity_out,
        cash=cash_out,
        positions=positions,
        trades=trades,
        kill_tiers=tiers,
    )


def _broker(costs: CostModel) -> PaperBroker:
    """The live paper broker with the backtest's slippage, spread, commission and cap."""
    return PaperBroker(
        costs.slippage_bps,
        costs.commission_per_share,
        spread_bps=costs.spread_bps,
        participation_cap=costs.participation_cap,
    )
