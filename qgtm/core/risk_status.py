"""What the terminal and the CLI see of the risk manager: plain, frozen data."""

from __future__ import annotations

from dataclasses import dataclass

from qgtm.core.enums import KillTier


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """One configured limit and how much of it the book uses now."""

    name: str
    value: float
    limit: float

    @property
    def usage(self) -> float:
        """value / limit (1.0 = at the limit)."""
        return self.value / self.limit if self.limit > 0 else 0.0


@dataclass(frozen=True, slots=True)
class TierChangeRow:
    """A kill-tier change: automatic escalation or an approved reset."""

    at: str
    from_tier: str
    to_tier: str
    detail: str


@dataclass(frozen=True, slots=True)
class RiskCutRow:
    """An order the risk manager cut or blocked, with its reason."""

    at: str
    kind: str
    symbol: str
    detail: str


@dataclass(frozen=True, slots=True)
class ResetRequestRow:
    """A pending kill-switch reset waiting for a second operator."""

    requested_by: str
    requested_at: str
    from_tier: str


@dataclass(frozen=True, slots=True)
class ResetResult:
    """The answer to a reset request or approval."""

    ok: bool
    message: str
    tier: KillTier


@dataclass(frozen=True, slots=True)
class RiskStatus:
    """Everything the Risk screen shows."""

    tier: KillTier
    tier_history: tuple[TierChangeRow, ...] = ()
    limits: tuple[LimitUsage, ...] = ()
    cvar_historical: float = 0.0
    cvar_parametric: float = 0.0
    cvar_limit: float = 0.0
    vol_target: float = 0.0
    vol_realised: float = 0.0
    vol_ex_ante: float = 0.0
    correlation_symbols: tuple[str, ...] = ()
    correlations: tuple[tuple[float, ...], ...] = ()
    cuts: tuple[RiskCutRow, ...] = ()
    pending_reset: ResetRequestRow | None = None
    operators: tuple[str, ...] = ()
