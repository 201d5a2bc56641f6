"""What the terminal sees of the engine: one immutable snapshot per engine step.

Screens render snapshots and send commands; they never reach into the engine. The
same snapshot type will travel over the attach socket to a terminal in another process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from qgtm.core.enums import KillTier, Mode, Source
from qgtm.core.risk_status import RiskStatus


@dataclass(frozen=True, slots=True)
class QuoteRow:
    """Watchlist line: last close and the day's change."""

    symbol: str
    sector: str
    last: float
    change_pct: float
    volume: int


@dataclass(frozen=True, slots=True)
class PositionRow:
    """Positions table line."""

    symbol: str
    quantity: int
    avg_price: float
    last_price: float
    market_value: float
    unrealized_pnl: float
    weight: float


@dataclass(frozen=True, slots=True)
class OrderRow:
    """Blotter line: an order and, once filled, its fill."""

    client_order_id: str
    decision_date: date
    symbol: str
    side: str
    quantity: int
    status: str
    fill_price: float | None
    filled_on: date | None


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit record as shown on screen."""

    seq: int
    sim_time: str
    event: str
    actor: str
    detail: str


@dataclass(frozen=True, slots=True)
class AuditPage:
    """The audit records matching a search (the audit screen's filters), newest first."""

    rows: tuple[AuditRow, ...] = ()


@dataclass(frozen=True, slots=True)
class ReconRow:
    """One reconciliation discrepancy as shown on the recon screen."""

    kind: str
    symbol: str
    severity: str
    broker_qty: int
    local_qty: int
    action: str
    detail: str


@dataclass(frozen=True, slots=True)
class ReconView:
    """The latest reconciliation run: counts, discrepancies, stale local positions."""

    at: str
    runs: int
    broker_positions: int
    local_positions: int
    discrepancies: tuple[ReconRow, ...] = ()
    stale: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DataRefreshView:
    """The daemon's data refresh: running or idle, when, which sources, one line each."""

    state: str  # RUNNING | OK | FAILED
    started: str
    finished: str = ""
    sources: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """The engine's state after its latest step; `version` increases with every step."""

    version: int
    mode: Mode
    source: Source
    session: date | None
    sim_time: datetime | None
    running: bool
    speed: float
    kill_tier: KillTier
    equity: float
    cash: float
    daily_pnl: float
    total_pnl: float
    drawdown: float
    gross_leverage: float
    sessions_done: int
    watchlist: tuple[QuoteRow, ...] = ()
    positions: tuple[PositionRow, ...] = ()
    equity_curve: tuple[tuple[date, float], ...] = ()
    recent_orders: tuple[OrderRow, ...] = ()
    recent_audit: tuple[AuditRow, ...] = ()
    alerts: tuple[str, ...] = ()
    risk: RiskStatus | None = None
    recon: ReconView | None = None
    regime: str | None = None
    regime_raw: str | None = None  # the session's own reading, before confirmation
    data_refresh: DataRefreshView | None = None

    @property
    def mode_label(self) -> str:
        """Banner text for mode and source, e.g. 'PAPER · DEMO'."""
        return f"{self.mode.value.upper()} · {self.source.value.upper()}"
