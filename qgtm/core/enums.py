"""Closed sets of values used across the engine, the terminal and the audit log."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Side(StrEnum):
    """Direction of a signal or an order."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for BUY, -1 for SELL."""
        return 1 if self is Side.BUY else -1


class SignalDirection(StrEnum):
    """What a strategy wants to hold: long, short or nothing."""

    LONG = "LONG"
    SHORT = "SHORT"
    FLAT = "FLAT"

    @property
    def sign(self) -> int:
        """+1 long, -1 short, 0 flat."""
        # asked for every signal the allocator nets: no mapping built per call
        if self is SignalDirection.LONG:
            return 1
        return -1 if self is SignalDirection.SHORT else 0


class OrderStatus(StrEnum):
    """Lifecycle states of an order (legal transitions are enforced by the OMS)."""

    NEW = "NEW"
    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"

    @property
    def is_open(self) -> bool:
        """True while the order can still fill."""
        return self in _OPEN_STATUSES


_OPEN_STATUSES = frozenset(
    {
        OrderStatus.NEW,
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
    }
)


class KillTier(IntEnum):
    """Tiered kill-switch; higher is more restrictive.

    NORMAL trades freely; WARN alerts; THROTTLE halves new sizes; NO_NEW allows only
    orders that close or reduce; FLATTEN liquidates everything.
    """

    NORMAL = 0
    WARN = 1
    THROTTLE = 2
    NO_NEW = 3
    FLATTEN = 4


class Mode(StrEnum):
    """Trading mode. LIVE is gated (see qgtm.core.config.live_trading_allowed)."""

    PAPER = "paper"
    LIVE = "live"


class Source(StrEnum):
    """Where market data comes from."""

    DEMO = "demo"
    ALPACA = "alpaca"
