"""TradingEngine: the book's engine, a facade over its wiring and its parts.

One session at a time, data -> strategies -> allocator -> risk -> OMS -> broker. The
engine builds the stores, the broker, the OMS, the risk manager and the learning loop,
rebuilds its in-memory state from state.sqlite at start-up and after a failed step
(`_restore`), binds the protocol's commands (`bind`, `call`) and holds the replay
clock's controls (pause/resume/speed). What it does each step lives in its parts,
functions over the engine (`parts.LiveEngine`):

- live/sessions.py: a replayed session (fill at the open, decide at 15:30, the close);
- live/wallclock.py: source=alpaca, no replay: the daemon's wall clock calls
  `decide_live` at 15:30, the broker streams fills (`process_broker_updates`), a
  session's close is booked when its bar arrives (`refresh_data`);
- live/replay.py: the replay clock's loop (`run`);
- live/risk_commands.py: the risk status, kill-switch resets, the emergency flatten;
- live/projection.py: the EngineSnapshot the terminal shows (`snapshot()`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from qgtm.core import calendar
from qgtm.core.config import Config, live_trading_allowed
from qgtm.core.enums import KillTier
from qgtm.core.protocol import ENGINE_COMMANDS, UnknownCommandError, command, parse_args
from qgtm.core.risk_status import RiskStatus
from qgtm.core.snapshot import (
    DataRefreshView,
    EngineSnapshot,
    ReconView,
)
from qgtm.core.types import Fill
from qgtm.core.universe import Universe, load_universe
from qgtm.engine.audit import AuditLog
from qgtm.engine.backtest.service import register_backtest_commands
from qgtm.engine.data.providers.commands import register_data_commands
from qgtm.engine.data.store import MarketStore, PricePanel
from qgtm.engine.execution.brokers.base import Broker, BrokerError
from qgtm.engine.execution.brokers.paper import PaperBroker, filled_positions
from qgtm.engine.execution.manager import OrderManager
from qgtm.engine.execution.oms import strategy_set_key
from qgtm.engine.features.pit_features import ContextCache
from qgtm.engine.features.regime import RegimeDetector
from qgtm.engine.features.store import FeatureStore
from qgtm.engine.learn.commands import register_learn_commands
from qgtm.engine.learn.loop import LearningLoop
from qgtm.engine.learn.registry import ModelRegistry
from qgtm.engine.learn.retrain import BacktestValidator
from qgtm.engine.live import replay, risk_commands, sessions, wallclock
from qgtm.engine.live.clock import Clock, SystemClock
from qgtm.engine.live.projection import build_snapshot
from qgtm.engine.live.queries import register_queries
from qgtm.engine.live.sessions import money
from qgtm.engine.live.strategy_commands import register_strategy_commands
from qgtm.engine.outbox import Outbox, OutboxSender, outbox_status
from qgtm.engine.portfolio.aggregator import Aggregation
from qgtm.engine.portfolio.book import Book
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
            self.panel = wallclock.load_live_market(self)
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
        self._bind_controls()
        register_data_commands(self)
        risk_commands.register_risk_commands(self)
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
            wallclock.check_account(self)
            if self.state.get_meta("last_index") is None:  # a new book: history ends here
                with self.state.transaction():
                    self.state.set_meta("last_index", self.next_index - 1)
                    self.state.set_meta("last_session", self.panel.dates[-1].isoformat())
            wallclock.close_pending(self)  # sessions whose bars arrived while the engine was down

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
            on_flatten=partial(sessions.flatten_now, self),
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
        self._snapshot = build_snapshot(self)

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
            s: money(p) for s, p in zip(self.panel.symbols, self.panel.close[index], strict=True)
        }

    # ----- one session (live/sessions.py) -------------------------------------------
    def step(self) -> bool:
        """Process the next session; False when there is none left."""
        return sessions.step(self)

    def _process_session(self, index: int) -> None:
        sessions.process_session(self, index)

    def _close(self, index: int, at: datetime) -> None:
        sessions.close_session(self, index, at)

    def _sessions(self) -> tuple[date, ...]:
        """The decision sessions of the loaded panel (for point-in-time features)."""
        return self.panel.dates

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

    # ----- wall clock (source=alpaca; live/wallclock.py) -----------------------------
    @property
    def wall_clock(self) -> bool:
        """True when the engine trades on real time (a non-demo source) instead of replay."""
        return not self.config.is_demo

    def decide_live(self, at: datetime) -> int:
        """The rebalance job on the wall clock: decide session `at.date()` once
        (`wallclock.decide_live`). Returns the number of orders placed, -1 if refused."""
        return wallclock.decide_live(self, at)

    def _decision_refusal(self, day: date, at: datetime) -> str:
        return wallclock.decision_refusal(self, day, at)

    def process_broker_updates(self, at: datetime | None = None) -> int:
        """Book what the venue streamed since the last call (the OMS-events task)."""
        return wallclock.process_broker_updates(self, at)

    def work_algos(self, at: datetime) -> None:
        """The algo job (wall clock, external venue): `wallclock.work_algos`."""
        wallclock.work_algos(self, at)

    def refresh_data(self, sources: Sequence[str] | None = None) -> list[str]:
        """The daemon's data job: `refresh_data_locked` under the step lock."""
        return wallclock.refresh_data(self, sources)

    def refresh_data_locked(self, sources: Sequence[str] | None = None) -> list[str]:
        """Incremental refresh of `sources` (default: the configured ones): see
        `wallclock.refresh_data_locked`. Progress shows in the snapshot (`data_refresh`)."""
        return wallclock.refresh_data_locked(self, sources)

    def refresh_sources(self) -> tuple[str, ...]:
        """`live.refresh_sources`, else the market's own: Alpaca bars when trading on them."""
        return wallclock.refresh_sources(self)

    def _publish_refresh(self, view: DataRefreshView) -> None:
        wallclock.publish_refresh(self, view)

    # ----- risk commands (live/risk_commands.py) -------------------------------------
    def risk_status(self) -> RiskStatus:
        """The risk manager's view of the book at the last close."""
        return risk_commands.risk_status(self)

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

    # ----- replay clock ------------------------------------------------------------
    async def run(self, max_sessions: int | None = None) -> int:
        """Step on the replay clock until stopped, out of data, or `max_sessions` done."""
        return await replay.run(self, max_sessions)

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

    async def _sleep_interval(self) -> None:
        await replay.sleep_interval(self)

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
        self._snapshot = build_snapshot(self)

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
        return risk_commands.emergency_flatten(self, reason, actor)
