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
from qgtm.core.config import Config
from qgtm.core.enums import KillTier, OrderStatus
from qgtm.core.snapshot import AuditRow, EngineSnapshot, PositionRow, QuoteRow
from qgtm.core.types import Order, Signal
from qgtm.core.universe import Universe, load_universe
from qgtm.engine.audit import AuditLog
from qgtm.engine.data.store import MarketStore, PricePanel
from qgtm.engine.execution.brokers.paper import PaperBroker
from qgtm.engine.execution.oms import orders_for_targets, strategy_set_key
from qgtm.engine.live.queries import register_queries
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
        register_queries(self)

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
        self.broker = PaperBroker(
            self.config.execution.slippage_bps,
            Decimal(self.config.execution.commission_per_share),
        )
        for order in self.state.open_orders():
            self.broker.submit(order)
        self._snapshot = self._build_snapshot()

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
            self._snapshot = self._build_snapshot()
            return True

    def _process_session(self, index: int) -> None:
        day = self.panel.dates[index]
        self._fill_at_open(index, calendar.session_open(day))
        self._rebalance(index, calendar.decision_time(day))
        self._close(index, calendar.session_close(day))

    def _fill_at_open(self, index: int, at: datetime) -> None:
        opens = {
            s: _money(p) for s, p in zip(self.panel.symbols, self.panel.open[index], strict=True)
        }
        for fill in self.broker.fill_at_open(opens, at):
            if not self.state.record_fill(fill):
                continue  # a fill seen twice is booked once
            self.book.apply_fill(fill)
            self.audit.append(
                "ORDER_FILLED",
                ACTOR,
                at,
                {
                    "client_order_id": fill.client_order_id,
                    "symbol": fill.symbol,
                    "side": fill.side.value,
                    "quantity": fill.quantity,
                    "price": str(fill.price),
                    "commission": str(fill.commission),
                },
            )

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
        for order in orders:
            self._submit(replace(order, status=OrderStatus.SUBMITTED), at)

    def _submit(self, order: Order, at: datetime) -> None:
        if not self.state.insert_order(order):
            return  # this decision already produced this order
        self.broker.submit(order)
        self.audit.append(
            "ORDER_SUBMITTED",
            ACTOR,
            at,
            {
                "client_order_id": order.client_order_id,
                "symbol": order.symbol,
                "side": order.side.value,
                "quantity": order.quantity,
                "reason": order.reason,
            },
        )

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
            self.state.set_order_status(order.client_order_id, OrderStatus.CANCELED)
        self.broker = PaperBroker(
            self.config.execution.slippage_bps, Decimal(self.config.execution.commission_per_share)
        )
        day = at.date()
        marks = {s: h.avg_price for s, h in self.book.holdings.items()}
        orders = orders_for_targets(
            {}, self.book.quantities(), marks, Decimal(1), day, at, FLATTEN_SET, Decimal(0)
        )
        for order in orders:
            self._submit(
                replace(order, status=OrderStatus.SUBMITTED, reason="emergency flatten"), at
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
        """Release the stores."""
        with self._step_lock:
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


def _realised_vols(history: PricePanel) -> dict[str, float]:
    """Annualised stdev of the last VOL_WINDOW daily log returns, per symbol."""
    window = history.close[-VOL_WINDOW - 1 :]
    if len(window) < 3:
        return {}
    sigma = np.diff(np.log(window), axis=0).std(axis=0, ddof=1) * np.sqrt(252)
    return {s: float(v) for s, v in zip(history.symbols, sigma, strict=True)}


def _short(payload: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in payload.items())
