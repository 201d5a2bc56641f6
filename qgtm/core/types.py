"""Frozen value types that flow through the engine: signals, orders, fills, positions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from qgtm.core.enums import KillTier, OrderStatus, Side, SignalDirection


@dataclass(frozen=True, slots=True)
class Signal:
    """A strategy's view on one symbol at one decision time.

    `weight` is the strategy's raw desired exposure magnitude (fraction of equity,
    before allocation); `confidence` is in [0, 1].
    """

    symbol: str
    side: SignalDirection
    weight: float
    confidence: float
    strategy: str
    as_of: date
    rationale: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")
        if self.weight < 0.0:
            raise ValueError(f"weight is a magnitude and must be >= 0, got {self.weight}")


@dataclass(frozen=True, slots=True)
class Order:
    """An instruction to trade `quantity` whole shares of `symbol`.

    `client_order_id` is derived deterministically from the decision that produced
    the order, so a restart or a retry can never create a second one.
    """

    client_order_id: str
    symbol: str
    side: Side
    quantity: int
    created_at: datetime
    decision_date: date
    status: OrderStatus = OrderStatus.NEW
    order_type: str = "market"
    reason: str = ""
    filled_quantity: int = 0

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"order quantity must be positive, got {self.quantity}")

    def with_status(self, status: OrderStatus, order_type: str | None = None) -> Order:
        """This order at `status` (and `order_type`, if given): dataclasses.replace,
        through the constructor, as the broker and the backtest do for every order."""
        return Order(
            self.client_order_id,
            self.symbol,
            self.side,
            self.quantity,
            self.created_at,
            self.decision_date,
            status,
            self.order_type if order_type is None else order_type,
            self.reason,
            self.filled_quantity,
        )


@dataclass(frozen=True, slots=True)
class Fill:
    """An execution of (part of) an order at a price."""

    fill_id: str
    client_order_id: str
    symbol: str
    side: Side
    quantity: int
    price: Decimal
    commission: Decimal
    filled_at: datetime

    @property
    def signed_quantity(self) -> int:
        """Quantity with the sign of the trade: positive buys, negative sells."""
        return self.quantity if self.side is Side.BUY else -self.quantity


@dataclass(frozen=True, slots=True)
class Position:
    """Holding in one symbol: signed quantity, average cost and last mark."""

    symbol: str
    quantity: int
    avg_price: Decimal
    last_price: Decimal

    @property
    def market_value(self) -> Decimal:
        """Signed value at the last mark."""
        return self.last_price * self.quantity

    @property
    def unrealized_pnl(self) -> Decimal:
        """(last - average cost) * signed quantity."""
        return (self.last_price - self.avg_price) * self.quantity


@dataclass(frozen=True, slots=True)
class PortfolioSnapshot:
    """The book at one instant: cash, positions and the numbers derived from them."""

    as_of: datetime
    cash: Decimal
    positions: tuple[Position, ...] = ()
    peak_equity: Decimal = Decimal(0)

    @property
    def equity(self) -> Decimal:
        """Cash plus the market value of every position."""
        return self.cash + sum((p.market_value for p in self.positions), Decimal(0))

    @property
    def gross_exposure(self) -> Decimal:
        """Sum of absolute position values."""
        return sum((abs(p.market_value) for p in self.positions), Decimal(0))

    @property
    def drawdown(self) -> float:
        """Fractional drawdown from the peak equity (0 at a new high)."""
        peak = max(self.peak_equity, self.equity)
        if peak <= 0:
            return 0.0
        return float((peak - self.equity) / peak)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Configured limits the risk manager enforces.

    Fractions are of equity: 0.20 means 20%. vol_target is annual; cvar_limit is the
    daily expected shortfall at cvar_alpha, as a fraction of equity; risk_lookback is
    the number of past sessions the correlation, volatility and CVaR estimates use.
    """

    max_position_weight: float = 0.20
    max_gross_leverage: float = 1.5
    daily_loss_limit: float = 0.05
    max_drawdown_pct: float = 0.25
    throttle_factor: float = 0.5
    warn_fraction: float = 0.50
    throttle_fraction: float = 0.75
    max_sector_weight: float = 0.40
    max_net_leverage: float = 1.0
    correlation_threshold: float = 0.80
    max_correlated_weight: float = 0.40
    vol_target: float = 0.15
    kelly_fraction: float = 0.5
    kelly_min_obs: int = 120
    kelly_min_leverage: float = 0.2
    cvar_alpha: float = 0.975
    cvar_limit: float = 0.03
    risk_lookback: int = 252

    def __post_init__(self) -> None:
        for name in (
            "max_position_weight",
            "max_gross_leverage",
            "daily_loss_limit",
            "max_sector_weight",
            "max_net_leverage",
            "max_correlated_weight",
            "vol_target",
            "kelly_fraction",
            "cvar_limit",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"risk limit {name} must be positive")
        if not 0 < self.max_drawdown_pct < 1:
            raise ValueError("risk limit max_drawdown_pct must be in (0, 1)")
        if not 0.5 < self.cvar_alpha < 1:
            raise ValueError("risk limit cvar_alpha must be in (0.5, 1)")
        if not -1 <= self.correlation_threshold <= 1:
            raise ValueError("risk limit correlation_threshold must be in [-1, 1]")
        if self.kelly_min_leverage < 0:
            raise ValueError("risk limit kelly_min_leverage must be >= 0 (0 = strict Kelly)")
        if self.risk_lookback < 20 or self.kelly_min_obs < 2:
            raise ValueError("risk_lookback must be >= 20 and kelly_min_obs >= 2")


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """Something the risk manager did: a tier change or an order cut or blocked."""

    kind: str
    detail: str
    tier: KillTier
    at: datetime
    data: dict[str, object] = field(default_factory=dict)
