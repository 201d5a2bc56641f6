"""TradingEngine: one session at a time, data -> strategies -> allocator -> risk -> OMS -> broker.

Per session t (all times New York):
  open   fill orders decided on t-1 at t's open (paper broker, with slippage);
  15:30  decide from bars strictly before t: signals, weights, risk, new orders;
  close  mark to market, daily P&L, kill-tier update, equity row.
Everything a session changes is committed in one SQLite transaction; in-memory state is
rebuilt from the store at start-up and after any failed step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from qgtm.core import calendar
from qgtm.core.config import Config, live_trading_allowed
from qgtm.core.enums import KillTier
from qgtm.core.snapshot import AuditRow, EngineSnapshot, PositionRow, QuoteRow
from qgtm.core.types import Order, Signal
from qgtm.core.universe import Universe, load_universe
from qgtm.engine.audit import AuditLog
from qgtm.engine.data.store import MarketStore, PricePanel
from qgtm.engine.execution.algos import Algo, select_algo
from qgtm.engine.execution.brokers.base import Broker, BrokerError
from qgtm.engine.execution.brokers.paper import PaperBroker, SessionBar
from qgtm.engine.execution.manager import Benchmarks, OrderManager
from qgtm.engine.execution.oms import orders_for_targets, strategy_set_key
from qgtm.engine.portfolio.allocator import inverse_vol_weights
from qgtm.engine.portfolio.book import Book
from qgtm.engine.risk.killswitch import escalate, tier_for
from qgtm.engine.risk.manager import check_targets
from qgtm.engine.state import StateStore
from qgtm.engine.strategies.base import BaseStrategy
from qgtm.engine.strategies.registry import create

log = logging.getLogger(__name__)

ACTOR = "engine"
VOL_WINDOW = 63
DEFAULT_WARMUP_SESSIONS = 260
MAX_SPEED = 64.0
MIN_SPEED = 1 / 60  # one session a minute
FLATTEN_SET = "FLATTEN"


class UnknownCommandError(KeyError):
    """A client asked for an engine command nobody registered."""

    def __str__(self) -> str:
        return str(self.args[0])


def _money(value: float) -> Decimal:
    """Market data floats as exact 4-decimal prices."""
    return Decimal(str(round(float(value), 4)))


class TradingEngine:
    """The book's engine over the demo market's replay clock."""

    def __init__(self, config: Config, data_dir: Path, universe: Universe | None = None) -> None:
        self.config = config
        self.data_dir = data_dir
        self.universe = universe or load_universe()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.market = MarketStore(data_dir)
        self.market.ensure_demo(self.universe, config.demo)
        self.panel: PricePanel = self.market.load_panel(self.universe.symbols)
        self.state = StateStore(data_dir)
        self.audit = AuditLog(self.state.conn)
        self.strategies: list[BaseStrategy] = [create(n) for n in config.engine.strategies]
        self.strategy_set = strategy_set_key(config.engine.strategies)
        self.speed = config.engine.speed
        self.running = True
        self.alerts: deque[str] = deque(maxlen=50)
        self._step_lock = threading.Lock()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._snapshot: EngineSnapshot | None = None
        self._commands: dict[str, Callable[..., Any]] = {}
        self._restore()
        self.register_command("execution.blotter", lambda limit=200: self.oms.blotter(limit))
        self.register_command("execution.children", lambda parent_id: self.oms.children(parent_id))
        self.register_command(
            "execution.tca",
            lambda limit=200: {
                "orders": self.oms.tca_rows(limit),
                "strategies": self.oms.tca_by_strategy(),
            },
        )

    # ----- state -------------------------------------------------------------------
    def _first_index(self) -> int:
        start = self.config.engine.start
        if start is None:
            warmup = max((s.warmup for s in self.strategies), default=0)
            return min(max(DEFAULT_WARMUP_SESSIONS, warmup + 1), len(self.panel) - 1)
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
        self.kill_tier = KillTier[self.state.get_meta("kill_tier") or "NORMAL"]
        self.peak_equity = Decimal(self.state.get_meta("peak_equity") or initial)
        self.prev_equity = Decimal(self.state.get_meta("prev_equity") or initial)
        self.daily_pnl = Decimal(self.state.get_meta("daily_pnl") or 0)
        if getattr(self, "broker", None) is None or isinstance(self.broker, PaperBroker):
            self.broker = self._make_broker()
        self.oms = OrderManager(
            self.state, self.audit, self.broker, lambda fill: self.book.apply_fill(fill), ACTOR
        )
        if isinstance(self.broker, PaperBroker):
            for order in self.state.open_orders():
                self.broker.adopt(order)
        else:
            self._recover_external_orders()
        self._snapshot = self._build_snapshot()

    def _make_broker(self) -> Broker:
        """The configured venue: the paper simulator, or Alpaca (paper endpoint unless live)."""
        execution = self.config.execution
        if execution.broker == "paper":
            return self._paper_broker()
        if execution.broker != "alpaca":
            raise ValueError(f"execution.broker must be paper or alpaca, got {execution.broker!r}")
        from qgtm.engine.execution.brokers.alpaca import AlpacaBroker
        from qgtm.engine.execution.keys import alpaca_credentials

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
            positions=self.book.quantities(),
            symbols=self.panel.symbols,
            check_hours=True,
        )
        if self.next_index > 0:
            broker.update_marks(self._marks(self.next_index - 1))
        return broker

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

    def _signals(self, history: PricePanel, day: date) -> list[Signal]:
        signals = [s for strategy in self.strategies for s in strategy.generate(history, day)]
        self.state.record_signals(signals)
        return signals

    def _rebalance(self, index: int, at: datetime) -> None:
        day = self.panel.dates[index]
        history = self.panel.history_before(index)
        marks = self._marks(index - 1)  # last price known at the decision
        equity = self.book.equity(marks)
        targets: dict[str, float] = {}
        if self.kill_tier < KillTier.FLATTEN:
            signals = self._signals(history, day)
            targets = inverse_vol_weights(
                signals, _realised_vols(history), self.config.engine.gross_target
            )
        approved, decisions = check_targets(
            targets, self.book.weights(marks), self.kill_tier, self.config.risk
        )
        for decision in decisions:
            detail = (
                f"{decision.symbol} {decision.requested:+.4f} -> {decision.approved:+.4f}: "
                f"{decision.reason}"
            )
            self.state.record_risk_event(
                at, "ORDER_CUT", self.kill_tier.name, detail, decision.symbol
            )
            self.audit.append("RISK_CUT", "risk", at, {"detail": detail})
        set_key = FLATTEN_SET if self.kill_tier >= KillTier.FLATTEN else self.strategy_set
        orders = orders_for_targets(
            approved,
            self.book.quantities(),
            marks,
            equity,
            day,
            at,
            set_key,
            Decimal(self.config.execution.min_trade_value),
        )
        adv = _average_volumes(history, self.config.execution.adv_window)
        for order in orders:
            algo = select_algo(
                order.quantity,
                adv.get(order.symbol, 0.0),
                self.config.execution.vwap_adv_fraction,
                self.config.execution.twap_adv_fraction,
            )
            self._submit(order, at, algo, marks[order.symbol])

    def _submit(self, order: Order, at: datetime, algo: Algo, decision_price: Decimal) -> None:
        """Hand one order to the OMS (recorded once; sent once)."""
        strategy = FLATTEN_SET if order.reason == "emergency flatten" else self._strategy_name
        self.oms.place(order, strategy=strategy, algo=algo, decision_price=decision_price, at=at)

    @property
    def _strategy_name(self) -> str:
        return ",".join(self.config.engine.strategies)

    def _close(self, index: int, at: datetime) -> None:
        day = self.panel.dates[index]
        marks = self._marks(index)
        equity = self.book.equity(marks)
        self.daily_pnl = equity - self.prev_equity
        self.peak_equity = max(self.peak_equity, equity)
        drawdown = float((self.peak_equity - equity) / self.peak_equity)
        called_for = tier_for(
            float(self.daily_pnl), float(self.prev_equity), drawdown, self.config.risk
        )
        new_tier = escalate(self.kill_tier, called_for)
        if new_tier != self.kill_tier:
            self._change_tier(new_tier, at, float(self.daily_pnl / self.prev_equity), drawdown)
        flattened = self.kill_tier >= KillTier.FLATTEN and not self.book.holdings
        if flattened and self.state.get_meta("flatten_complete") != "1":
            self.audit.append("EMERGENCY_FLATTEN_COMPLETE", "risk", at, {"equity": str(equity)})
            self.state.set_meta("flatten_complete", "1")
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
            ("peak_equity", self.peak_equity),
            ("prev_equity", equity),
            ("daily_pnl", self.daily_pnl),
            ("kill_tier", self.kill_tier.name),
        ):
            self.state.set_meta(key, value)
        self.prev_equity = equity

    def _change_tier(
        self, new_tier: KillTier, at: datetime, pnl_frac: float, drawdown: float
    ) -> None:
        old = self.kill_tier
        self.kill_tier = new_tier
        detail = f"{old.name} -> {new_tier.name}: day P&L {pnl_frac:+.2%}, drawdown {drawdown:.2%}"
        self.state.record_risk_event(at, "TIER_CHANGE", new_tier.name, detail)
        self.audit.append(
            "TIER_CHANGE",
            "risk",
            at,
            {
                "from": old.name,
                "to": new_tier.name,
                "daily_pnl_pct": pnl_frac,
                "drawdown": drawdown,
            },
        )
        self.alerts.appendleft(f"{at:%Y-%m-%d} kill tier {detail}")
        log.warning("event=tier_change from=%s to=%s detail=%r", old.name, new_tier.name, detail)
        if new_tier >= KillTier.FLATTEN:
            self._flatten_now(at)

    def _flatten_now(self, at: datetime) -> None:
        """Cancel working orders and send closing orders for every holding (fill next open)."""
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

    # ----- commands ----------------------------------------------------------------
    def register_command(self, name: str, handler: Callable[..., Any]) -> None:
        """Expose `handler` to clients (terminal, attach socket) as `name` ("area.verb")."""
        if name in self._commands:
            raise ValueError(f"engine command {name!r} is already registered")
        self._commands[name] = handler

    def call(self, name: str, **kwargs: Any) -> Any:
        """Run a registered command between steps; its result must be plain data."""
        try:
            handler = self._commands[name]
        except KeyError:
            known = ", ".join(sorted(self._commands)) or "none"
            raise UnknownCommandError(f"unknown engine command {name!r} (known: {known})") from None
        with self._step_lock:
            result = handler(**kwargs)
        self._publish_controls()
        return result

    # ----- replay clock ------------------------------------------------------------
    async def run(self, max_sessions: int | None = None) -> int:
        """Step on the replay clock until stopped, out of data, or `max_sessions` done."""
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
            self.state.close()
            self.market.close()

    # ----- what the terminal sees --------------------------------------------------
    def snapshot(self) -> EngineSnapshot:
        """The state after the latest step."""
        assert self._snapshot is not None
        return self._snapshot

    def _publish_controls(self) -> None:
        if self._snapshot is not None:
            self._snapshot = replace(
                self._snapshot,
                running=self.running,
                speed=self.speed,
                version=self._snapshot.version + 1,
            )

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
            sim_time=calendar.session_close(session) if session else None,
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


def _average_volumes(history: PricePanel, window: int) -> dict[str, float]:
    """Mean daily volume over the last `window` sessions before the decision, per symbol."""
    recent = history.volume[-window:]
    if len(recent) == 0:
        return {}
    return {s: float(v) for s, v in zip(history.symbols, recent.mean(axis=0), strict=True)}


def _realised_vols(history: PricePanel) -> dict[str, float]:
    """Annualised stdev of the last VOL_WINDOW daily log returns, per symbol."""
    window = history.close[-VOL_WINDOW - 1 :]
    if len(window) < 3:
        return {}
    sigma = np.diff(np.log(window), axis=0).std(axis=0, ddof=1) * np.sqrt(252)
    return {s: float(v) for s, v in zip(history.symbols, sigma, strict=True)}


def _short(payload: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in payload.items())
