"""What the engine's parts see of the engine: the state they read and the hooks they call.

`TradingEngine` (live/engine.py) holds the book's state and wires the stores; its parts
are functions over it: the replay's session steps (live/sessions.py), wall-clock mode
(live/wallclock.py), the replay clock (live/replay.py), the operator's risk commands
(live/risk_commands.py) and the snapshot projection (live/projection.py). They take a
`LiveEngine`, this Protocol, so none of them imports the engine (the engine imports
them: no import cycle, issue 22).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from qgtm.core.config import Config
from qgtm.core.enums import KillTier
from qgtm.core.risk_status import RiskStatus
from qgtm.core.snapshot import DataRefreshView, EngineSnapshot, ReconView
from qgtm.core.universe import Universe
from qgtm.engine.audit import AuditLog
from qgtm.engine.data.store import MarketStore, PricePanel
from qgtm.engine.execution.brokers.base import Broker
from qgtm.engine.execution.manager import OrderManager
from qgtm.engine.features.pit_features import ContextCache
from qgtm.engine.features.regime import RegimeDetector
from qgtm.engine.learn.loop import LearningLoop
from qgtm.engine.live.clock import Clock
from qgtm.engine.outbox import Outbox, OutboxSender
from qgtm.engine.portfolio.aggregator import Aggregation
from qgtm.engine.portfolio.book import Book
from qgtm.engine.risk.manager import RiskManager
from qgtm.engine.state import StateStore
from qgtm.engine.strategies.base import BaseStrategy


class LiveEngine(Protocol):
    """The engine as its parts use it (`TradingEngine` is the one implementation)."""

    config: Config
    universe: Universe
    clock: Clock
    market: MarketStore
    panel: PricePanel
    state: StateStore
    audit: AuditLog
    outbox: Outbox
    book: Book
    broker: Broker
    oms: OrderManager
    risk: RiskManager
    learn: LearningLoop
    strategies: list[BaseStrategy]
    strategy_set: str
    strategy_inputs: ContextCache
    regime_detector: RegimeDetector
    regime: str | None
    regime_raw: str | None
    last_aggregation: Aggregation | None
    next_index: int
    prev_equity: Decimal
    daily_pnl: Decimal
    running: bool
    speed: float
    alerts: deque[str]
    data_refresh: DataRefreshView | None
    recon_view: ReconView | None
    _startup_alerts: list[str]
    _step_lock: threading.Lock
    _stop: asyncio.Event
    _wake: asyncio.Event
    _snapshot: EngineSnapshot | None

    @property
    def wall_clock(self) -> bool: ...

    @property
    def kill_tier(self) -> KillTier: ...

    @property
    def peak_equity(self) -> Decimal: ...

    @property
    def at_end(self) -> bool: ...

    @property
    def current_session(self) -> date | None: ...

    def _marks(self, index: int) -> dict[str, Decimal]: ...

    def _restore(self) -> None: ...

    def _sync_learning(self) -> None: ...

    def _flush_alerts(self) -> None: ...

    def _process_session(self, index: int) -> None: ...

    def _close(self, index: int, at: datetime) -> None: ...

    def alert(self, message: str, source: str = "engine") -> None: ...

    def bind(self, name: str, handler: Callable[..., Any], *, step_lock: bool = True) -> None: ...

    def risk_status(self) -> RiskStatus: ...

    def refresh_data_locked(self, sources: Sequence[str] | None = None) -> list[str]: ...

    def refresh_sources(self) -> tuple[str, ...]: ...

    def step(self) -> bool: ...

    def make_sender(self) -> OutboxSender | None: ...
