"""TradingEngine: one session at a time, data -> strategies -> allocator -> risk -> OMS -> broker.

Per session t (all times New York):
  open   fill orders decided on t-1 at t's open (paper broker, with slippage);
  15:30  decide from bars strictly before t: signals, weights, risk, new orders;
  close  mark to market, daily P&L, kill-tier update, equity row.
Everything a session changes is committed in one SQLite transaction; in-memory state is
rebuilt from the store at start-up and after any failed step.

With a real source (source=alpaca) there is no replay: the market is Alpaca's daily bars
known by the clock's now, the daemon's wall clock calls `decide_live` at 15:30, the broker
streams fills (booked by `process_broker_updates`), and a session's close is booked when
its bar arrives (`refresh_data`); see the "wall clock" section below.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from qgtm.core import calendar
from qgtm.core.config import Config, live_trading_allowed
from qgtm.core.enums import KillTier, Side
from qgtm.core.protocol import ENGINE_COMMANDS, UnknownCommandError, command, parse_args
from qgtm.core.results import BlotterRow, ChildOrderRow, TcaReport, TcaRow, TcaStrategyRow
from qgtm.core.risk_status import ResetResult, RiskStatus
from qgtm.core.snapshot import (
    AuditRow,
    DataRefreshView,
    EngineSnapshot,
    PositionRow,
    QuoteRow,
    ReconView,
)
from qgtm.core.types import Fill, Order
from qgtm.core.universe import Universe, load_universe
from qgtm.engine.audit import AuditLog
from qgtm.engine.backtest.service import register_backtest_commands
from qgtm.engine.data.providers.commands import register_data_commands
from qgtm.engine.data.store import MarketDataError, MarketStore, PricePanel
from qgtm.engine.decision import (
    FLATTEN_SET,
    DecisionPoint,
    DecisionRules,
    OrderRules,
    StrategySignals,
    decide,
)
from qgtm.engine.execution.algos import Algo
from qgtm.engine.execution.brokers.base import Broker, BrokerError
from qgtm.engine.execution.brokers.paper import PaperBroker, SessionBar, filled_positions
from qgtm.engine.execution.manager import Benchmarks, OrderManager
from qgtm.engine.execution.oms import orders_for_targets, strategy_set_key
from qgtm.engine.features.pit_features import ContextCache
from qgtm.engine.features.regime import RegimeDetector
from qgtm.engine.features.store import FeatureStore
from qgtm.engine.learn.commands import register_learn_commands
from qgtm.engine.learn.loop import LearningLoop
from qgtm.engine.learn.registry import ModelRegistry
from qgtm.engine.learn.retrain import BacktestValidator
from qgtm.engine.live.clock import Clock, SystemClock
from qgtm.engine.live.queries import register_queries
from qgtm.engine.live.recorder import BookRecorder
from qgtm.engine.live.strategy_commands import register_strategy_commands
from qgtm.engine.outbox import Outbox, OutboxSender, outbox_status
from qgtm.engine.portfolio.aggregator import Aggregation
from qgtm.engine.portfolio.allocator import AllocationSettings, daily_returns
from qgtm.engine.portfolio.book import Book
from qgtm.engine.risk.checks import RiskContext
from qgtm.engine.risk.manager import RiskManager
from qgtm.engine.state import StateStore
from qgtm.engine.strategies.base import BaseStrategy
from qgtm.engine.strategies.registry import create

log = logging.getLogger(__name__)

ACTOR = "engine"
DEFAULT_WARMUP_SESSIONS = 260
DEMO_HISTORY_SESSIONS = 5 * 252
"""A new replay book starts after five years of history when the market leaves at least
as much to replay (the default demo, 2008-2025, replays from 2013): Research, which only
ever sees the sessions before the replay clock, then backtests on years of data, not on
the dozen sessions left after a strategy's one-year warm-up. A shorter market (tests)
keeps DEFAULT_WARMUP_SESSIONS."""
MAX_SPEED = 64.0
MIN_SPEED = 1 / 60  # one session a minute


def _money(value: float) -> Decimal:
    """Market data floats as exact 4-decimal prices."""
    return Decimal(str(round(float(value), 4)))


class TradingEngine:
    """The book's engine: the demo market's replay clock, or the wall clock (source=alpaca)."""

    def __init__(
        self,
        config: Config,
        data_dir: Path,
        universe: Universe | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.data_dir = data_dir
        self.universe = universe or load_universe()
        self.clock: Clock = clock or SystemClock()  # wall-clock mode (source=alpaca) only
        self.data_refresh: DataRefreshView | None = None
        self._startup_alerts: list[str] = []
        data_dir.mkdir(parents=True, exist_ok=True)
        self.market = MarketStore(data_dir)
        if config.is_demo:
            self.market.ensure_demo(self.universe, config.demo)
            self.panel: PricePanel = self.market.load_panel(self.universe.symbols)
        else:
            self.panel = self._load_live_market()
        self.state = StateStore(data_dir)
        self.audit = AuditLog(self.state.conn)
        self.strategies: list[BaseStrategy] = [create(n) for n in config.engine.strategies]
        self.strategy_set = strategy_set_key(config.engine.strategies)
        self.speed = config.engine.speed
        self.running = True
        self.alerts: deque[str] = deque(maxlen=50)
        self._unsent_alerts: list[tuple[str, str, datetime]] = []  # for the owner's outbox
        self._step_lock = threading.Lock()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._snapshot: EngineSnapshot | None = None
        self._handlers: dict[str, tuple[Callable[..., Any], bool]] = {}
        self.outbox = Outbox(self.state.conn)
        self.bind("publish.status", lambda: outbox_status(self.state.path))
        self.recon_view: ReconView | None = None
        self.regime_detector = RegimeDetector()
        self.last_aggregation: Aggregation | None = None
        # macro/COT inputs: real point-in-time features when the store holds provider data
        self.strategy_inputs = ContextCache(FeatureStore(self.market.connection), self._sessions)
        self._restore()
        register_strategy_commands(self)
        register_backtest_commands(self)
        self._bind_execution_commands()
        self._bind_controls()
        register_data_commands(self)
        self._register_risk_commands()
        self.learn = LearningLoop(
            self.state.conn,
            self.audit,
            ModelRegistry(self.state.conn, self.audit, data_dir / "artifacts"),
            self.panel,
            config.learn,
            BacktestValidator(
                config.learn.walk_forward_train,
                config.learn.walk_forward_test,
                config.learn.pbo_splits,
            ),
            alert=lambda message: self.alert(message, source="learn"),
            inputs=self.strategy_inputs.get,  # retrain on the same macro/COT inputs
        )
        self._sync_learning()
        register_learn_commands(self, self.learn)
        register_queries(self)
        for message in self._startup_alerts:
            self.alert(message, source="data")
        if self.wall_clock:
            self._check_account()
            if self.state.get_meta("last_index") is None:  # a new book: history ends here
                with self.state.transaction():
                    self.state.set_meta("last_index", self.next_index - 1)
                    self.state.set_meta("last_session", self.panel.dates[-1].isoformat())
            self._close_pending()  # sessions whose bars arrived while the engine was down

    # ----- state -------------------------------------------------------------------
    def _first_index(self) -> int:
        if self.wall_clock:  # a new live book starts now: stored bars are history
            return len(self.panel)
        start = self.config.engine.start
        if start is None:
            warmup = max((s.warmup for s in self.strategies), default=0)
            first = max(DEFAULT_WARMUP_SESSIONS, warmup + 1)
            if len(self.panel) >= 2 * DEMO_HISTORY_SESSIONS:
                first = max(first, DEMO_HISTORY_SESSIONS)
            return min(first, len(self.panel) - 1)
        for i, day in enumerate(self.panel.dates):
            if day >= start:
                return max(i, 1)
        raise ValueError(f"engine.start {start} is after the last stored session")

    def _restore(self) -> None:
        """Rebuild in-memory state from state.sqlite (fresh book if nothing stored)."""
        initial = Decimal(self.config.engine.initial_cash)
        self.book: Book = self.state.load_book(initial)
        last = self.state.get_meta("last_index")
        self.next_index = self._first_index() if last is None else int(last) + 1
        self.risk = RiskManager(
            self.state,
            self.audit,
            self.config.risk,
            initial,
            alert=lambda message: self.alert(message, source="risk"),
            on_flatten=self._flatten_now,
            book_time=self._book_time,
        )
        with self.state.transaction():
            self.risk.sync_limits(calendar.session_close(self.panel.dates[self.next_index - 1]))
        self.prev_equity = Decimal(self.state.get_meta("prev_equity") or initial)
        self.daily_pnl = Decimal(self.state.get_meta("daily_pnl") or 0)
        self.regime: str | None = self.state.get_meta("regime") or None
        self.regime_raw: str | None = None  # known again at the next decision
        if getattr(self, "broker", None) is None or isinstance(self.broker, PaperBroker):
            self.broker = self._make_broker()
        self.oms = OrderManager(
            self.state,
            self.audit,
            self.broker,
            self._on_fill,
            ACTOR,
            participation_cap=self.config.execution.participation_cap,
        )
        if isinstance(self.broker, PaperBroker):
            for order in self.state.open_orders():
                self.broker.adopt(order)
        else:
            self._recover_external_orders()
        self._snapshot = self._build_snapshot()

    def _on_fill(self, fill: Fill) -> None:
        """Book a fill; on the wall clock also persist the book in the fill's transaction
        (fills arrive between closes there, and a crash must not lose a holding)."""
        self.book.apply_fill(fill)
        if self.wall_clock:
            self.state.save_positions(self.book, self._marks(max(self.next_index - 1, 0)))
            self.state.set_meta("cash", self.book.cash)

    def _make_broker(self) -> Broker:
        """The configured venue: the paper simulator, or Alpaca (paper endpoint unless live)."""
        execution = self.config.execution
        if execution.broker == "paper":
            if self.wall_clock:
                raise ValueError("source=alpaca needs execution.broker = alpaca")
            return self._paper_broker()
        if execution.broker != "alpaca":
            raise ValueError(f"execution.broker must be paper or alpaca, got {execution.broker!r}")
        from qgtm.core.secrets import alpaca_credentials
        from qgtm.engine.execution.brokers.alpaca import AlpacaBroker

        key_id, secret = alpaca_credentials()
        return AlpacaBroker(
            key_id,
            secret,
            paper=not live_trading_allowed(self.config),
            url=execution.alpaca_url or None,
            stream_url=execution.alpaca_stream_url or None,
        )

    def _recover_external_orders(self) -> None:
        """After a restart: sync working orders with the venue, then send committed NEW ones.

        An order committed NEW may have reached the venue before a crash; `dispatch`
        looks each one up by client order id before sending, so none goes out twice.
        """
        last = self.next_index - 1
        if self.wall_clock:  # a parent planned now must get a window from now on
            at = self.clock.now()
        else:
            at = calendar.session_close(self.panel.dates[last]) if last >= 0 else datetime.now()
        try:
            with self.state.transaction():
                self.oms.recover(at)
        except BrokerError as exc:  # venue unreachable: retried at the next restart/step
            self.alerts.appendleft(f"broker unreachable at start-up: {exc}")
            log.warning("event=recover_deferred error=%r", str(exc))
        self.oms.dispatch(at)

    def _paper_broker(self) -> PaperBroker:
        """The simulated venue, seeded with the book's cash and holdings."""
        execution = self.config.execution
        broker = PaperBroker(
            execution.slippage_bps,
            Decimal(execution.commission_per_share),
            spread_bps=execution.spread_bps,
            participation_cap=execution.participation_cap,
            latency_ms=execution.latency_ms,
            cash=self.book.cash,
            positions=filled_positions(self.state.conn),  # the venue's own view, for recon
            symbols=self.panel.symbols,
            check_hours=True,
        )
        if self.next_index > 0:
            broker.update_marks(self._marks(self.next_index - 1))
        return broker

    def _book_time(self) -> datetime:
        """The book's time: the wall clock (source=alpaca), else the close of the last
        processed session (the replay's simulated time; what the snapshot shows)."""
        if self.wall_clock:
            return self.clock.now()
        return calendar.session_close(self.panel.dates[max(self.next_index - 1, 0)])

    @property
    def kill_tier(self) -> KillTier:
        """The risk manager's current kill tier."""
        return self.risk.tier

    @property
    def peak_equity(self) -> Decimal:
        """The equity peak the drawdown is measured from (kept by the risk manager)."""
        return self.risk.peak_equity

    @property
    def at_end(self) -> bool:
        """True once every stored session has been processed."""
        return self.next_index >= len(self.panel)

    @property
    def current_session(self) -> date | None:
        """The last processed session."""
        return self.panel.dates[self.next_index - 1] if self.next_index > 0 else None

    def _marks(self, index: int) -> dict[str, Decimal]:
        return {
            s: _money(p) for s, p in zip(self.panel.symbols, self.panel.close[index], strict=True)
        }

    # ----- one session -------------------------------------------------------------
    def step(self) -> bool:
        """Process the next session; False when there is none left."""
        with self._step_lock:
            if self.at_end:
                return False
            index = self.next_index
            try:
                with self.state.transaction():
                    self._process_session(index)
            except Exception:
                log.exception("event=step_failed session=%s", self.panel.dates[index])
                self._restore()
                self.learn.resync()
                self._sync_learning()
                raise
            self.next_index = index + 1
            if self.broker.commit_before_send:  # committed first, then sent (never the reverse)
                self.oms.dispatch(calendar.session_close(self.panel.dates[index]))
            self._snapshot = self._build_snapshot()
            return True

    def _process_session(self, index: int) -> None:
        day = self.panel.dates[index]
        self._fill_at_open(index, calendar.session_open(day))
        self._rebalance(index, calendar.decision_time(day))
        self._close(index, calendar.session_close(day))
        self._flush_alerts()

    def _fill_at_open(self, index: int, at: datetime) -> None:
        """Work the orders decided on t-1 through session t; fills are booked once."""
        p = self.panel
        bars = {
            s: SessionBar(
                _money(p.open[index, i]),
                _money(p.high[index, i]),
                _money(p.low[index, i]),
                _money(p.close[index, i]),
                float(p.volume[index, i]),
            )
            for i, s in enumerate(p.symbols)
        }
        if isinstance(self.broker, PaperBroker):
            self.broker.execute_session(bars, self.panel.dates[index])
        self.oms.process_updates(at, {s: Benchmarks.from_bar(b) for s, b in bars.items()})

    def _sessions(self) -> tuple[date, ...]:
        """The decision sessions of the loaded panel (for point-in-time features)."""
        return self.panel.dates

    def _regime_of(self, history: PricePanel, day: date) -> str | None:
        """The regime label for `day` (the confirmed one, kept in state; raw for the screen)."""
        reading = self.regime_detector.label(history, day)
        self.regime = reading.label if reading is not None else None
        self.regime_raw = reading.raw_label if reading is not None else None
        self.state.set_meta("regime", self.regime or "")
        return self.regime

    def _rebalance(self, index: int, at: datetime) -> None:
        """Decide session `index` (engine/decision.decide, this book's stores as its
        recorder) and hand its orders to the OMS."""
        day = at.astimezone(calendar.NEW_YORK).date()  # == panel.dates[index] when replaying
        history = self.panel.history_before(index)
        marks = self._marks(index - 1)  # last price known at the decision
        point = DecisionPoint(
            index=index,
            day=day,
            at=at,
            history=history,
            returns=_daily_returns(history, self.config.risk.risk_lookback),
            current=self.book.weights(marks),
            equity=self.book.equity(marks),
            peak=self.peak_equity,
            tier=self.kill_tier,
            holdings=self.book.quantities(),
            marks=marks,
        )
        source = StrategySignals(self.strategies, self._regime_of, self.strategy_inputs.get)
        decision = decide(
            point, source, self._decision_rules(), self._recorder(), self._order_rules()
        )
        if decision.aggregation is not None:
            self.last_aggregation = decision.aggregation
        for planned in decision.orders:
            order = planned.order
            self._submit(order, at, planned.algo, marks[order.symbol], planned.mean_volume)

    def _decision_rules(self) -> DecisionRules:
        symbols = tuple(self.panel.symbols)
        return DecisionRules(
            symbols=symbols,
            sectors={s: self.universe.sector_of(s) for s in symbols},
            limits=self.config.risk,
            allocation=self._allocation_settings(),
            cov_window=self.config.portfolio.cov_window,
            gross_target=self.config.engine.gross_target,
        )

    def _order_rules(self) -> OrderRules:
        execution = self.config.execution
        return OrderRules(
            set_key=self.strategy_set,
            min_trade_value=Decimal(execution.min_trade_value),
            adv_window=execution.adv_window,
            vwap_adv_fraction=execution.vwap_adv_fraction,
            twap_adv_fraction=execution.twap_adv_fraction,
        )

    def _recorder(self) -> BookRecorder:
        return BookRecorder(
            self.state,
            self.audit,
            self.risk,
            self.outbox,
            self.market.connection,
            self.strategy_set,
            self.panel.close,
            tuple(self.panel.symbols),
        )

    def _allocation_settings(self) -> AllocationSettings:
        return AllocationSettings.from_config(self.config)

    def _risk_context(
        self,
        returns: np.ndarray,
        sleeves: dict[str, dict[str, float]] | None = None,
        index: int | None = None,
    ) -> RiskContext:
        """Market facts for the checks; with sleeves, each strategy's paper return history
        (closes strictly before session `index`) for its fractional-Kelly cap."""
        strategy_returns: dict[str, list[float]] = {}
        if sleeves and index is not None:
            strategy_returns = self.risk.strategy_returns(
                index, self.panel.close[:index], tuple(self.panel.symbols)
            )
        return RiskContext(
            symbols=tuple(self.panel.symbols),
            sectors={s: self.universe.sector_of(s) for s in self.panel.symbols},
            returns=returns,
            sleeves=sleeves or {},
            strategy_returns=strategy_returns,
        )

    def _submit(
        self,
        order: Order,
        at: datetime,
        algo: Algo,
        decision_price: Decimal,
        adv: float | None = None,
    ) -> None:
        """Hand one order to the OMS (recorded once; sent once); `adv` sizes the
        participation cap of a parent the OMS slices itself."""
        strategy = FLATTEN_SET if order.reason == "emergency flatten" else self._strategy_name
        self.oms.place(
            order, strategy=strategy, algo=algo, decision_price=decision_price, at=at, adv=adv
        )

    @property
    def _strategy_name(self) -> str:
        return ",".join(self.config.engine.strategies)

    def _close(self, index: int, at: datetime) -> None:
        day = self.panel.dates[index]
        marks = self._marks(index)
        equity = self.book.equity(marks)
        self.daily_pnl = equity - self.prev_equity
        self.risk.update_pnl(self.daily_pnl, equity, at)
        self.risk.flatten_complete(len(self.book.holdings), equity, at)
        gross = sum((abs(marks[s] * h.quantity) for s, h in self.book.holdings.items()), Decimal(0))
        self.state.record_equity(
            day, equity, self.book.cash, self.daily_pnl, gross, self.kill_tier.name
        )
        self.state.save_positions(self.book, marks)
        if isinstance(self.broker, PaperBroker):
            self.broker.update_marks(marks)
        for key, value in (
            ("last_index", index),
            ("last_session", day.isoformat()),
            ("cash", self.book.cash),
            ("prev_equity", equity),
            ("daily_pnl", self.daily_pnl),
        ):
            self.state.set_meta(key, value)
        self.prev_equity = equity
        self.strategies = self.learn.on_close(index, self.strategies)

    def _flush_alerts(self) -> None:
        """Queue alerts raised since the last write into the outbox (inside a transaction)."""
        for source, message, at in self._unsent_alerts:
            self.outbox.enqueue_alert(source, message, at)
        self._unsent_alerts.clear()

    def _sync_learning(self) -> None:
        """Trade each strategy at its PRODUCTION parameters (registering v1 on first run)."""
        session = self.current_session.isoformat() if self.current_session else "start"
        with self.state.transaction():
            self.strategies = self.learn.bootstrap(
                [create(n) for n in self.config.engine.strategies], session
            )

    def _flatten_now(self, at: datetime) -> None:
        """Stop every sliced parent's schedule, cancel working orders and send closing
        orders for every holding (fill next open)."""
        self._stop_algos()
        for order in self.broker.open_orders():
            self.oms.cancel(order.client_order_id)
        self.oms.process_updates(at)
        day = at.date()
        marks = {s: h.avg_price for s, h in self.book.holdings.items()}
        orders = orders_for_targets(
            {}, self.book.quantities(), marks, Decimal(1), day, at, FLATTEN_SET, Decimal(0)
        )
        for order in orders:
            self._submit(
                replace(order, reason="emergency flatten"), at, Algo.MARKET, marks[order.symbol]
            )

    # ----- wall clock (source=alpaca) ---------------------------------------------
    # On the wall clock the session being decided has no bar yet: at 15:30 on day t the
    # engine decides from the bars of t-1 and before (all its panel holds, by knowledge
    # time), the broker fills the orders during the session and the OMS-events task books
    # the fills as they stream in; t's close is booked when t's bar arrives (the data
    # refresh after the close, or the next start-up / decision).

    @property
    def wall_clock(self) -> bool:
        """True when the engine trades on real time (a non-demo source) instead of replay."""
        return not self.config.is_demo

    def _load_live_market(self) -> PricePanel:
        """Start-up: fetch the missing Alpaca daily bars, then load what is known by now."""
        failure = ""
        try:
            self._ingest_bars(self.clock.now())
        except Exception as exc:  # the stored bars still serve; the owner hears about it
            failure = str(exc)
            self._startup_alerts.append(f"start-up bar refresh failed: {exc}")
            log.warning("event=startup_refresh_failed error=%r", failure)
        try:
            return self.market.load_provider_panel(self.universe.symbols, self.clock.now())
        except MarketDataError as exc:
            if failure:
                raise MarketDataError(f"{exc} (start-up refresh: {failure})") from None
            raise

    def _ingest_bars(self, now: datetime) -> list[str]:
        from qgtm.engine.data.providers.ingest import refresh

        lines: list[str] = []
        refresh(self.market, ("alpaca",), self.universe.symbols, lines.append, now.date())
        failed = [line for line in lines if "FAILED" in line]
        if failed:
            raise RuntimeError("; ".join(failed))
        return lines

    def _reload_panel(self) -> None:
        """Load the bars known now (after a refresh); indices of stored days do not move."""
        panel = self.market.load_provider_panel(self.universe.symbols, self.clock.now())
        if panel.dates[: len(self.panel)] != self.panel.dates:
            raise MarketDataError(
                "stored provider bars changed their session days; refusing to re-index the book"
            )
        self.panel = panel
        self.learn.panel = panel

    def _close_pending(self) -> int:
        """Book the close of every session whose bar arrived since the last close (caller
        holds the step lock, or is the constructor). Returns how many were booked."""
        done = 0
        while self.next_index < len(self.panel):
            index = self.next_index
            at = calendar.session_close(self.panel.dates[index])
            try:
                with self.state.transaction():
                    self.oms.process_updates(at)
                    self._close(index, at)
                    self._flush_alerts()
            except Exception:
                log.exception("event=close_failed session=%s", self.panel.dates[index])
                self._restore()
                raise
            self.next_index = index + 1
            done += 1
            if self.broker.commit_before_send:  # a kill-switch flatten placed orders
                self.oms.dispatch(at)
        if done:
            self._snapshot = self._build_snapshot()
        return done

    def _check_account(self) -> None:
        """A new live book starts from engine.initial_cash: warn when the account differs."""
        fresh = self.state.get_meta("last_index") is None
        if not fresh or self.state.get_meta("decided_session") is not None:
            return
        initial = Decimal(self.config.engine.initial_cash)
        try:
            equity = self.broker.account().equity
        except Exception as exc:  # the venue is unreachable: say so, trade on later
            self.alert(f"cannot read the broker account at start-up: {exc}", source="engine")
            return
        if initial > 0 and abs(equity - initial) / initial > Decimal("0.01"):
            self.alert(
                f"the broker account's equity {equity:,.2f} differs from engine.initial_cash "
                f"{initial:,.2f}: set initial_cash to the account's equity before trading",
                source="engine",
            )

    def decide_live(self, at: datetime) -> int:
        """The rebalance job on the wall clock: decide session `at.date()` once.

        Books pending closes first; refuses (alert, returns -1) while paused, and a day
        that is not a session, is already decided, is past its close, or whose previous
        session's bar is missing. Returns the number of orders placed.
        """
        day = at.astimezone(calendar.NEW_YORK).date()
        with self._step_lock:
            self._close_pending()
            if self.state.get_meta("decided_session") == day.isoformat():
                log.info("event=decision_skipped reason=already_decided session=%s", day)
                return -1
            refusal = self._decision_refusal(day, at)
            if refusal:
                self.alert(f"no decision on {day}: {refusal}", source="engine")
                with self.state.transaction():
                    self._flush_alerts()
                log.warning("event=decision_refused session=%s reason=%r", day, refusal)
                return -1
            index = len(self.panel)
            before = self.state.conn.execute("SELECT count(*) FROM orders").fetchone()[0]
            try:
                with self.state.transaction():
                    self.oms.process_updates(at)
                    self._rebalance(index, at)
                    self.state.set_meta("decided_session", day.isoformat())
                    self._flush_alerts()
            except Exception:
                log.exception("event=decision_failed session=%s", day)
                self._restore()
                raise
            placed = self.state.conn.execute("SELECT count(*) FROM orders").fetchone()[0] - before
            self.oms.dispatch(at)  # committed first, then sent
            self._snapshot = self._build_snapshot()
            log.info("event=decided session=%s orders=%d", day, placed)
            return placed

    def _decision_refusal(self, day: date, at: datetime) -> str:
        if not self.running:
            return "paused by the operator"
        if not calendar.is_session(day):
            return "not an XNYS session"
        if at >= calendar.session_close(day):
            return "the session has closed"
        previous = calendar.sessions(day - timedelta(days=14), day - timedelta(days=1))
        if previous and self.panel.dates[-1] < previous[-1]:
            return f"bars stop at {self.panel.dates[-1]}, {previous[-1]} is missing"
        return ""

    def process_broker_updates(self, at: datetime | None = None) -> int:
        """Book what the venue streamed since the last call (the OMS-events task)."""
        if at is None:  # replay with an external broker: the simulated time
            session = self.current_session
            wall = self.wall_clock or session is None
            at = self.clock.now() if wall else calendar.session_close(session)
        with self._step_lock:
            with self.state.transaction():
                count = self.oms.process_updates(at)
                self._flush_alerts()
            if count:
                self._snapshot = self._build_snapshot()
        return count

    def work_algos(self, at: datetime) -> None:
        """The algo job (wall clock, external venue): book what the venue reported, then
        release the sliced parents' due children and close ended windows. Under NO_NEW
        or worse, parents that would grow a position stop first."""
        with self._step_lock:
            with self.state.transaction():
                self.oms.process_updates(at)
                self._flush_alerts()
            if self.kill_tier >= KillTier.NO_NEW:
                with self.state.transaction():
                    self._stop_algos(increasing_only=True)
            self.oms.work(at)  # commits each child itself (SENDING, sent, answer)
            self._snapshot = self._build_snapshot()

    def _stop_algos(self, increasing_only: bool = False) -> None:
        """Stop the schedules of sliced parents still planned or working (with
        `increasing_only`, just those that would grow a position: what NO_NEW forbids)."""
        working = set(self.oms.working_parents())
        if not working:
            return
        held = self.book.quantities()
        for order in self.state.open_orders():
            if order.client_order_id not in working:
                continue
            holding = held.get(order.symbol, 0)
            grows = holding >= 0 if order.side is Side.BUY else holding <= 0
            if grows or not increasing_only:
                self.oms.cancel(order.client_order_id)

    def refresh_data(self, sources: Sequence[str] | None = None) -> list[str]:
        """The daemon's data job: `refresh_data_locked` under the step lock."""
        with self._step_lock:
            return self.refresh_data_locked(sources)

    def refresh_data_locked(self, sources: Sequence[str] | None = None) -> list[str]:
        """Incremental refresh of `sources` (default: the configured ones), the quality
        suite after each ingest, then (trading on Alpaca bars) reload the market and book
        the closes that arrived. Progress shows in the snapshot (`data_refresh`)."""
        from qgtm.engine.data.providers.commands import scheduled_refresh

        chosen = tuple(sources) if sources is not None else self.refresh_sources()
        started = self.clock.now().isoformat(timespec="seconds")
        self._publish_refresh(DataRefreshView("RUNNING", started, sources=chosen))
        lines: list[str] = []

        def progress(line: str) -> None:
            lines.append(line)
            self._publish_refresh(
                DataRefreshView("RUNNING", started, sources=chosen, lines=tuple(lines))
            )

        state = "OK"
        try:
            scheduled_refresh(self, chosen, self.clock.now().date(), progress)
            if self.wall_clock and "alpaca" in chosen:
                self._reload_panel()
                self._close_pending()
        except Exception as exc:
            state = "FAILED"
            lines.append(f"refresh: FAILED {exc}")
            self.alert(f"data refresh failed: {exc}", source="data")
            log.exception("event=data_refresh_failed")
        if any("FAILED" in line for line in lines):
            state = "FAILED"
        with self.state.transaction():
            self._flush_alerts()
        self.data_refresh = DataRefreshView(
            state,
            started,
            self.clock.now().isoformat(timespec="seconds"),
            chosen,
            tuple(lines),
        )
        self._snapshot = self._build_snapshot()
        return lines

    def refresh_sources(self) -> tuple[str, ...]:
        """`live.refresh_sources`, else the market's own: Alpaca bars when trading on them."""
        configured = self.config.live.refresh_sources
        if configured:
            return configured
        return ("alpaca",) if self.wall_clock else ()

    def _publish_refresh(self, view: DataRefreshView) -> None:
        self.data_refresh = view
        if self._snapshot is not None:
            self._snapshot = replace(
                self._snapshot, data_refresh=view, version=self._snapshot.version + 1
            )

    # ----- risk commands -----------------------------------------------------------
    def _register_risk_commands(self) -> None:
        self.bind("risk.status", self.risk_status)
        self.bind("risk.request_reset", self._request_reset)
        self.bind("risk.approve_reset", self._approve_reset)
        self.bind("risk.add_operator", self._add_operator)

    def risk_status(self) -> RiskStatus:
        """The risk manager's view of the book at the last close."""
        last = max(self.next_index - 1, 0)
        marks = self._marks(last)
        returns = _daily_returns(
            self.panel.history_before(last + 1), self.config.risk.risk_lookback
        )
        curve = [e for _, e in self.state.equity_curve(64)]
        realised = (
            float(np.std(np.diff(curve) / np.array(curve[:-1]), ddof=1) * np.sqrt(252))
            if len(curve) > 2
            else 0.0
        )
        return self.risk.status(self.book.weights(marks), self._risk_context(returns), realised)

    def _operator_command(self, action: Callable[[], ResetResult]) -> ResetResult:
        with self.state.transaction():
            result = action()
            self._flush_alerts()
        self._snapshot = self._build_snapshot()
        return result

    def _request_reset(self, operator: str, passphrase: str) -> ResetResult:
        return self._operator_command(lambda: self.risk.request_reset(operator, passphrase))

    def _approve_reset(self, approver: str, passphrase: str) -> ResetResult:
        return self._operator_command(lambda: self.risk.approve_reset(approver, passphrase))

    def _add_operator(self, operator: str, passphrase: str) -> ResetResult:
        def add() -> ResetResult:
            self.risk.add_operator(operator, passphrase)
            return ResetResult(True, f"operator {operator} added", self.kill_tier)

        return self._operator_command(add)

    # ----- commands ----------------------------------------------------------------
    def bind(self, name: str, handler: Callable[..., Any], *, step_lock: bool = True) -> None:
        """Answer the protocol's command `name` (`qgtm.core.protocol`) with `handler`.

        The handler runs under the step lock (between steps) unless `step_lock` is False
        (controls that must not wait for a step, or that step themselves). Binding a name
        the protocol does not declare, a session command, or one twice is an error."""
        if name not in ENGINE_COMMANDS:
            raise UnknownCommandError(f"{name!r} is not an engine command of the protocol")
        if name in self._handlers:
            raise ValueError(f"engine command {name!r} is already bound")
        self._handlers[name] = (handler, step_lock)

    def is_bound(self, name: str) -> bool:
        """True when a handler answers the command `name`."""
        return name in self._handlers

    def bound_commands(self) -> frozenset[str]:
        """The names of every bound command."""
        return frozenset(self._handlers)

    def call(self, name: str, **kwargs: Any) -> Any:
        """Run the command `name` with `kwargs` checked against its declared arguments;
        its result is of the command's declared result type."""
        spec = command(name)
        try:
            handler, locked = self._handlers[name]
        except KeyError:
            raise UnknownCommandError(f"engine command {name!r} has no handler here") from None
        args = parse_args(spec, kwargs)
        if locked:
            with self._step_lock:
                result = handler(**args)
        else:
            result = handler(**args)
        self._publish_controls()
        return result

    def _bind_controls(self) -> None:
        def control(action: Callable[[], Any]) -> Callable[[], EngineSnapshot]:
            return lambda: (action(), self.snapshot())[1]

        self.bind("engine.snapshot", self.snapshot, step_lock=False)
        self.bind("engine.pause", control(self.pause), step_lock=False)
        self.bind("engine.resume", control(self.resume), step_lock=False)
        self.bind("engine.faster", control(self.faster), step_lock=False)
        self.bind("engine.slower", control(self.slower), step_lock=False)
        self.bind(
            "engine.speed", lambda speed: control(lambda: self.set_speed(speed))(), step_lock=False
        )
        self.bind("engine.advance", self._advance, step_lock=False)

    def _advance(self, sessions: int = 1) -> EngineSnapshot:
        """Process up to `sessions` sessions now (each step takes the step lock)."""
        for _ in range(sessions):
            if not self.step():
                break
        return self.snapshot()

    def _bind_execution_commands(self) -> None:
        """The blotter, child slices and TCA as typed rows (OrderManager's dict rows
        converted at this boundary)."""
        self.bind(
            "execution.blotter",
            lambda limit: [msgspec.convert(r, BlotterRow) for r in self.oms.blotter(limit)],
        )
        self.bind(
            "execution.children",
            lambda parent_id: [
                msgspec.convert(r, ChildOrderRow) for r in self.oms.children(parent_id)
            ],
        )
        self.bind(
            "execution.tca",
            lambda limit: TcaReport(
                tuple(msgspec.convert(r, TcaRow) for r in self.oms.tca_rows(limit)),
                tuple(msgspec.convert(r, TcaStrategyRow) for r in self.oms.tca_by_strategy()),
            ),
        )

    # ----- replay clock ------------------------------------------------------------
    async def run(self, max_sessions: int | None = None) -> int:
        """Step on the replay clock until stopped, out of data, or `max_sessions` done."""
        done = 0
        sender = self._start_sender()
        try:
            done = await self._run_sessions(max_sessions)
        finally:
            if sender is not None:
                sender[0].stop()
                await sender[1]
        return done

    def _start_sender(self) -> tuple[OutboxSender, asyncio.Task] | None:
        """The outbox sender runs beside the replay clock when a publisher url is set."""
        sender = self.make_sender()
        if sender is None:
            return None
        return sender, asyncio.create_task(sender.run(), name="outbox-sender")

    def make_sender(self) -> OutboxSender | None:
        """The outbox sender when a publisher url is set (the daemon supervises its run)."""
        if not self.config.publish.url:
            return None
        from qgtm.core.config import ConfigError
        from qgtm.core.publication import SecretMissingError, load_secret

        try:
            secret = load_secret()
        except SecretMissingError as exc:
            raise ConfigError(f"[publish] url is set but {exc}") from None
        return OutboxSender(
            self.state.path,
            self.config.publish.url,
            secret,
            batch_size=self.config.publish.batch_size,
            max_backoff=self.config.publish.max_backoff,
        )

    async def _run_sessions(self, max_sessions: int | None) -> int:
        done = 0
        while not self._stop.is_set():
            if max_sessions is not None and done >= max_sessions:
                break
            if not self.running:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._sleep_interval()  # the clock ticks after one interval, then steps
            if self._stop.is_set() or not self.running:
                continue
            if not await asyncio.to_thread(self.step):
                self.alerts.appendleft("end of stored history: replay finished")
                log.info("event=replay_finished session=%s", self.current_session)
                break
            done += 1
        return done

    async def _sleep_interval(self) -> None:
        delay = 0.0 if self.speed <= 0 else 1.0 / self.speed
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def request_stop(self) -> None:
        """Stop after the current step (safe from signal handlers)."""
        self._stop.set()
        self._wake.set()

    def pause(self) -> None:
        """Hold the replay clock."""
        self.running = False
        self._publish_controls()

    def resume(self) -> None:
        """Restart the replay clock."""
        self.running = True
        self._wake.set()
        self._publish_controls()

    def set_speed(self, speed: float) -> None:
        """Sessions per second; 0 runs as fast as possible."""
        self.speed = 0.0 if speed <= 0 else min(max(speed, MIN_SPEED), MAX_SPEED)
        self._wake.set()
        self._publish_controls()

    def faster(self) -> None:
        """Double the speed (MAX after the top speed)."""
        self.set_speed(0.0 if self.speed >= MAX_SPEED or self.speed <= 0 else self.speed * 2)

    def slower(self) -> None:
        """Halve the speed (from MAX back to the top speed)."""
        self.set_speed(MAX_SPEED if self.speed <= 0 else self.speed / 2)

    def close(self) -> None:
        """Release the stores (and the broker's stream, if it has one)."""
        with self._step_lock:
            closer = getattr(self.broker, "close", None)
            if callable(closer):
                closer()
            self.learn.shutdown()
            self.state.close()
            self.market.close()

    # ----- what the terminal sees --------------------------------------------------
    def snapshot(self) -> EngineSnapshot:
        """The state after the latest step."""
        assert self._snapshot is not None
        return self._snapshot

    def refresh_snapshot(self) -> None:
        """Rebuild the snapshot after a command changed the book between steps."""
        self._snapshot = self._build_snapshot()

    def _publish_controls(self) -> None:
        if self._snapshot is not None:
            self._snapshot = replace(
                self._snapshot,
                running=self.running,
                speed=self.speed,
                version=self._snapshot.version + 1,
            )

    def alert(self, message: str, source: str = "engine") -> None:
        """Raise an owner alert: the alerts pane now, the owner's chat channel (outbox) with
        the next state write, which is the current one when raised inside a session."""
        self.alerts.appendleft(message)
        session = self.current_session
        at = calendar.session_close(session) if session else datetime.now(UTC)
        self._unsent_alerts.append((source, message, at))
        if self._snapshot is not None:
            self._snapshot = replace(
                self._snapshot, alerts=tuple(self.alerts), version=self._snapshot.version + 1
            )

    def publish_recon(self, view: ReconView | None) -> None:
        """Show the latest reconciliation run in the snapshot."""
        self.recon_view = view
        if self._snapshot is not None:
            self._snapshot = replace(
                self._snapshot,
                recon=view,
                alerts=tuple(self.alerts),
                version=self._snapshot.version + 1,
            )

    def emergency_flatten(self, reason: str, actor: str = "watchdog") -> int:
        """Escalate to FLATTEN and send closing orders now; the caller holds the step lock.

        Returns how many closing orders were sent. Used by the dead-man's switch.
        """
        at = self._snapshot.sim_time if self._snapshot and self._snapshot.sim_time else None
        at = at or calendar.session_close(self.panel.dates[max(self.next_index - 1, 0)])
        with self.state.transaction():
            self.audit.append("EMERGENCY_FLATTEN", actor, at, {"reason": reason})
            if self.kill_tier < KillTier.FLATTEN:
                self.risk.trip(KillTier.FLATTEN, at, f"{actor}: {reason}")
            else:
                self._flatten_now(at)
            self.alert(f"EMERGENCY FLATTEN ({actor}): {reason}", source=actor)
            self._flush_alerts()
        if self.broker.commit_before_send:  # committed first, then sent (no step will)
            self.oms.dispatch(at)
        self._snapshot = self._build_snapshot()
        return len(self.broker.open_orders())

    def _build_snapshot(self) -> EngineSnapshot:
        last = self.next_index - 1
        session = self.panel.dates[last] if last >= 0 else None
        marks = self._marks(max(last, 0))
        equity = self.book.equity(marks)
        initial = Decimal(self.config.engine.initial_cash)
        gross = sum((abs(marks[s] * h.quantity) for s, h in self.book.holdings.items()), Decimal(0))
        previous = self._snapshot.version if self._snapshot is not None else 0
        return EngineSnapshot(
            version=previous + 1,
            mode=self.config.mode,
            source=self.config.source,
            session=session,
            sim_time=(
                self.clock.now()
                if self.wall_clock
                else calendar.session_close(session)
                if session
                else None
            ),
            running=self.running,
            speed=self.speed,
            kill_tier=self.kill_tier,
            equity=float(equity),
            cash=float(self.book.cash),
            daily_pnl=float(self.daily_pnl),
            total_pnl=float(equity - initial),
            drawdown=float((self.peak_equity - equity) / self.peak_equity) if equity else 0.0,
            gross_leverage=float(gross / equity) if equity > 0 else 0.0,
            sessions_done=self.state.session_count(),
            watchlist=self._watchlist(max(last, 1)),
            positions=self._positions(marks, equity),
            equity_curve=tuple(self.state.equity_curve(500)),
            recent_orders=tuple(self.state.recent_orders(100)),
            recent_audit=tuple(
                AuditRow(r.seq, r.sim_time, r.event, r.actor, _short(r.payload))
                for r in self.audit.tail(100)
            ),
            alerts=tuple(self.alerts),
            risk=self.risk_status(),
            recon=self.recon_view,
            regime=self.regime,
            regime_raw=self.regime_raw,
            data_refresh=self.data_refresh,
        )

    def _watchlist(self, index: int) -> tuple[QuoteRow, ...]:
        close, prev = self.panel.close[index], self.panel.close[index - 1]
        return tuple(
            QuoteRow(
                symbol=s,
                sector=self.universe.sector_of(s),
                last=float(close[i]),
                change_pct=float(close[i] / prev[i] - 1.0),
                volume=int(self.panel.volume[index, i]),
            )
            for i, s in enumerate(self.panel.symbols)
        )

    def _positions(self, marks: dict[str, Decimal], equity: Decimal) -> tuple[PositionRow, ...]:
        rows = []
        for symbol, held in sorted(self.book.holdings.items()):
            value = marks[symbol] * held.quantity
            rows.append(
                PositionRow(
                    symbol=symbol,
                    quantity=held.quantity,
                    avg_price=float(held.avg_price),
                    last_price=float(marks[symbol]),
                    market_value=float(value),
                    unrealized_pnl=float((marks[symbol] - held.avg_price) * held.quantity),
                    weight=float(value / equity) if equity > 0 else 0.0,
                )
            )
        return tuple(rows)


def _daily_returns(history: PricePanel, sessions: int) -> np.ndarray:
    """Simple daily close-to-close returns of the last `sessions` sessions (T x N)."""
    return daily_returns(history.close, sessions)


def _short(payload: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in payload.items())
