"""The risk manager: kill tiers from P&L, pre-trade checks, two-person resets.

Pure rules live in killswitch.py (tiers) and checks.py (limits); this class adds the
state (tier, peak equity, pending reset, limits in force, all in state.sqlite), the
audit records and the owner alerts. Methods write inside the caller's transaction.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, date, datetime
from decimal import Decimal

import numpy as np

from qgtm.core.enums import KillTier
from qgtm.core.risk_status import (
    LimitUsage,
    ResetRequestRow,
    ResetResult,
    RiskCutRow,
    RiskStatus,
    TierChangeRow,
)
from qgtm.core.types import RiskLimits
from qgtm.engine.audit import AuditLog
from qgtm.engine.risk.checks import (
    CheckResult,
    RiskContext,
    RiskDecision,
    book_cvar,
    book_volatility,
    correlated_groups,
    gross_leverage,
    net_leverage,
    run_checks,
    sector_exposures,
    sleeve_day_return,
    sleeve_window,
)
from qgtm.engine.risk.killswitch import book_close
from qgtm.engine.risk.operators import OperatorRegistry
from qgtm.engine.state import StateStore

__all__ = ["RiskDecision", "RiskManager", "check_targets"]

log = logging.getLogger(__name__)
ACTOR = "risk"

TIER_ALERTS = {
    KillTier.WARN: "WARN: approaching daily loss limit",
    KillTier.THROTTLE: "THROTTLE: sizes reduced 50%",
    KillTier.NO_NEW: "NO_NEW: new positions blocked",
    KillTier.FLATTEN: "FLATTEN: emergency liquidation",
}


def check_targets(
    targets: Mapping[str, float],
    current: Mapping[str, float],
    tier: KillTier,
    limits: RiskLimits,
) -> tuple[dict[str, float], list[RiskDecision]]:
    """The checks that need no market context (tier, position, gross, net): approved weights
    and every change made. See checks.run_checks for the full pipeline."""
    result = run_checks(targets, current, tier, limits)
    return result.approved, result.decisions


def _now() -> datetime:
    return datetime.now(UTC)


class RiskManager:
    """Owns the kill tier and every pre-trade check; survives restarts through SQLite."""

    def __init__(
        self,
        state: StateStore,
        audit: AuditLog,
        limits: RiskLimits,
        initial_equity: Decimal,
        alert: Callable[[str], None] | None = None,
        on_flatten: Callable[[datetime], None] | None = None,
        book_time: Callable[[], datetime] | None = None,
    ) -> None:
        """`book_time`: the book's current (simulated or wall-clock) time, which stamps
        an operator's reset as the closes stamp escalations (default: `stored_book_time`)."""
        self.state = state
        self.book_time = book_time or self.stored_book_time
        self.audit = audit
        self.limits = limits
        self.alert = alert or (lambda message: None)
        self.on_flatten = on_flatten
        self.operators = OperatorRegistry(state.conn)
        self.tier = KillTier[state.get_meta("kill_tier") or "NORMAL"]
        self.peak_equity = Decimal(state.get_meta("peak_equity") or initial_equity)

    def stored_book_time(self) -> datetime:
        """The book's time when no engine runs: the close of the last booked session, else
        the newest risk event's time, else (a new book) the wall clock."""
        session = self.state.get_meta("last_session")
        if session:
            from qgtm.core import calendar  # the exchange calendar, only when needed

            return calendar.session_close(date.fromisoformat(session))
        row = self.state.conn.execute(
            "SELECT at FROM risk_events ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return datetime.fromisoformat(row[0]) if row else _now()

    # ----- limits in force ------------------------------------------------------------
    def sync_limits(self, at: datetime | str) -> bool:
        """Store the configured limits; audit LIMITS_CHANGED when they differ from the
        stored ones (the first start records LIMITS_SET). True if anything was written."""
        now = json.dumps(asdict(self.limits), sort_keys=True)
        stored = self.state.get_meta("risk_limits")
        if stored == now:
            return False
        event = "LIMITS_SET" if stored is None else "LIMITS_CHANGED"
        before = {} if stored is None else json.loads(stored)
        changed = {
            k: [before.get(k), v] for k, v in asdict(self.limits).items() if before.get(k) != v
        }
        self.audit.append(event, ACTOR, at, {"changed": changed})
        self.state.set_meta("risk_limits", now)
        return True

    # ----- kill tiers ------------------------------------------------------------------
    def update_pnl(
        self, daily_pnl: Decimal | float, equity: Decimal | float, at: datetime
    ) -> KillTier:
        """Escalate on the day's P&L and the drawdown from peak; never step down.

        Tier change: risk_events row + TIER_CHANGE audit (from, to) + owner alert; reaching
        FLATTEN calls `on_flatten` (the OMS closes every position).
        """
        equity_d = Decimal(str(equity))
        pnl_d = Decimal(str(daily_pnl))
        equity_before = equity_d - pnl_d
        close = book_close(self.tier, self.peak_equity, equity_before, equity_d, self.limits)
        self.peak_equity = close.peak
        drawdown, called_for, new_tier = close.drawdown, close.called_for, close.tier
        self.audit.append(
            "RISK_PNL_CHECK",
            ACTOR,
            at,
            {
                "daily_pnl": str(pnl_d),
                "equity": str(equity_d),
                "drawdown": round(drawdown, 8),
                "called_for": called_for.name,
                "tier": new_tier.name,
            },
        )
        if new_tier != self.tier:
            pnl_frac = float(pnl_d / equity_before) if equity_before > 0 else 0.0
            detail = f"day P&L {pnl_frac:+.2%}, drawdown {drawdown:.2%}"
            self._set_tier(new_tier, at, detail, {"daily_pnl_pct": pnl_frac, "drawdown": drawdown})
            if new_tier >= KillTier.FLATTEN and self.on_flatten is not None:
                self.on_flatten(at)
        self.state.set_meta("peak_equity", self.peak_equity)
        return self.tier

    def trip(self, new_tier: KillTier, at: datetime, reason: str) -> KillTier:
        """Escalate from outside the P&L rules (watchdog, operator); never steps down."""
        if new_tier > self.tier:
            self._set_tier(new_tier, at, reason, {"reason": reason})
            if new_tier >= KillTier.FLATTEN and self.on_flatten is not None:
                self.on_flatten(at)
        return self.tier

    def _set_tier(self, new_tier: KillTier, at: datetime, detail: str, data: dict) -> None:
        old = self.tier
        self.tier = new_tier
        text = f"{old.name} -> {new_tier.name}: {detail}"
        self.state.record_risk_event(at, "TIER_CHANGE", new_tier.name, text)
        self.audit.append("TIER_CHANGE", ACTOR, at, {"from": old.name, "to": new_tier.name, **data})
        self.state.set_meta("kill_tier", new_tier.name)
        if new_tier > old:
            self.state.set_meta("flatten_complete", "0")
        message = TIER_ALERTS.get(new_tier, f"{new_tier.name}: kill switch reset")
        self.alert(f"{at:%Y-%m-%d} kill tier {text} — {message}")
        log.warning("event=tier_change from=%s to=%s detail=%r", old.name, new_tier.name, detail)

    def flatten_complete(self, holdings_left: int, equity: Decimal, at: datetime) -> bool:
        """Log EMERGENCY_FLATTEN_COMPLETE once, when FLATTEN holds and the book is empty."""
        if self.tier < KillTier.FLATTEN or holdings_left:
            return False
        if self.state.get_meta("flatten_complete") == "1":
            return False
        self.audit.append("EMERGENCY_FLATTEN_COMPLETE", ACTOR, at, {"equity": str(equity)})
        self.state.set_meta("flatten_complete", "1")
        return True

    # ----- pre-trade -------------------------------------------------------------------
    def check(
        self,
        targets: Mapping[str, float],
        current: Mapping[str, float],
        context: RiskContext,
        at: datetime,
    ) -> CheckResult:
        """Run every pre-trade check in order; audit each check and each cut or block."""
        result = run_checks(targets, current, self.tier, self.limits, context)
        self.record_check(result, at)
        return result

    def record_check(self, result: CheckResult, at: datetime) -> None:
        """Audit each check's outcome (RISK_CHECK) and each cut or block (risk event +
        RISK_CUT / KILL_SWITCH_BLOCK) of a run_checks at the current tier."""
        self.audit.append(
            "RISK_CHECK",
            ACTOR,
            at,
            {
                "tier": self.tier.name,
                "checks": [
                    {
                        "check": o.check,
                        "value": round(o.value, 8),
                        "limit": o.limit,
                        "action": o.action,
                    }
                    for o in result.outcomes
                ],
            },
        )
        for decision in result.decisions:
            detail = (
                f"{decision.symbol} {decision.requested:+.4f} -> {decision.approved:+.4f}: "
                f"{decision.reason}"
            )
            kind = "ORDER_BLOCKED" if decision.blocked else "ORDER_CUT"
            self.state.record_risk_event(at, kind, self.tier.name, detail, decision.symbol)
            event = "KILL_SWITCH_BLOCK" if decision.reason.startswith("kill tier") else "RISK_CUT"
            self.audit.append(event, ACTOR, at, {"detail": detail, "kind": kind})

    # ----- per-strategy history for the Kelly cap ------------------------------------
    def record_sleeves(
        self, session_index: int, sleeves: Mapping[str, Mapping[str, float]]
    ) -> None:
        """Store each strategy's proposed sleeve of this decision (before any risk cut)."""
        self.state.conn.executemany(
            "INSERT OR REPLACE INTO strategy_sleeves (strategy, session_index, weights) "
            "VALUES (?, ?, ?)",
            [
                (name, session_index, json.dumps(dict(sleeve), sort_keys=True))
                for name, sleeve in sleeves.items()
            ],
        )

    def strategy_returns(
        self, session_index: int, closes: np.ndarray, symbols: tuple[str, ...]
    ) -> dict[str, list[float]]:
        """Paper daily return per unit of gross of each strategy's proposed sleeves.

        The sleeve decided at session i is held over close(i) -> close(i+1):
        r = sum_k w_k (C[i+1,k] / C[i,k] - 1) / sum_k |w_k|. Only sessions with i + 1
        before `session_index` count, and `closes` must stop before it (no lookahead).
        Because these are the proposals, not the fills, a strategy cut to zero keeps a
        history and can earn its way back under the cap.
        """
        if closes.shape[0] > session_index:
            raise ValueError("strategy_returns must not see closes at or after the decision")
        column = {s: i for i, s in enumerate(symbols)}
        rows = self.state.conn.execute(
            "SELECT strategy, session_index, weights FROM strategy_sleeves "
            "WHERE session_index BETWEEN ? AND ? ORDER BY session_index",
            sleeve_window(session_index, self.limits.risk_lookback),
        ).fetchall()
        history: dict[str, list[float]] = {}
        for strategy, i, text in rows:
            day = sleeve_day_return(json.loads(text), closes, i, column)
            if day is not None:
                history.setdefault(strategy, []).append(day)
        return history

    # ----- two-person reset ------------------------------------------------------------
    def pending_reset(self) -> ResetRequestRow | None:
        """The open reset request, if any."""
        row = self.state.conn.execute(
            "SELECT requested_by, requested_at, from_tier FROM reset_requests "
            "WHERE status = 'PENDING' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else ResetRequestRow(*row)

    def add_operator(self, name: str, passphrase: str) -> None:
        """Register an operator (salted scrypt hash only) and audit it (name only)."""
        self.operators.add(name, passphrase)
        self.audit.append("OPERATOR_ADDED", ACTOR, _now(), {"operator": name})

    def _authenticated(self, name: str, passphrase: str, purpose: str) -> bool:
        if self.operators.authenticate(name, passphrase):
            return True
        self.audit.append("OPERATOR_AUTH_FAILED", ACTOR, _now(), {"operator": name, "for": purpose})
        return False

    def request_reset(self, operator: str, passphrase: str) -> ResetResult:
        """First half of a reset: an authenticated operator asks to go back to NORMAL."""
        if self.tier == KillTier.NORMAL:
            return ResetResult(False, "kill tier is NORMAL: nothing to reset", self.tier)
        if not self._authenticated(operator, passphrase, "request_reset"):
            return ResetResult(
                False, f"operator {operator!r}: unknown name or wrong passphrase", self.tier
            )
        pending = self.pending_reset()
        if pending is not None:
            return ResetResult(
                False, f"a reset requested by {pending.requested_by} is already pending", self.tier
            )
        at = self.book_time()
        self.state.conn.execute(
            "INSERT INTO reset_requests (requested_by, requested_at, from_tier, status) "
            "VALUES (?, ?, ?, 'PENDING')",
            (operator, at.isoformat(), self.tier.name),
        )
        self.audit.append(
            "KILL_SWITCH_RESET_REQUESTED", ACTOR, at, {"operator": operator, "tier": self.tier.name}
        )
        self.alert(f"kill-switch reset requested by {operator}; a second operator must approve")
        return ResetResult(
            True,
            f"reset from {self.tier.name} requested by {operator}; needs a second operator",
            self.tier,
        )

    def approve_reset(self, approver: str, passphrase: str) -> ResetResult:
        """Second half: a different authenticated operator approves; the tier goes to NORMAL
        and the drawdown peak is re-based to today's equity (the loss has been accepted)."""
        pending = self.pending_reset()
        if pending is None:
            return ResetResult(False, "no reset request is pending", self.tier)
        if not self._authenticated(approver, passphrase, "approve_reset"):
            return ResetResult(
                False, f"operator {approver!r}: unknown name or wrong passphrase", self.tier
            )
        at = self.book_time()  # the book's time, as every escalation's; the wall clock apart
        wall = _now().isoformat(timespec="seconds")
        if approver == pending.requested_by:
            self.audit.append(
                "KILL_SWITCH_RESET_REFUSED",
                ACTOR,
                at,
                {"operator": approver, "reason": "self-approval: approver is the requester"},
            )
            self.state.record_risk_event(
                at, "RESET_REFUSED", self.tier.name, f"self-approval by {approver}"
            )
            return ResetResult(
                False, f"refused: {approver} requested this reset and cannot approve it", self.tier
            )
        self.state.conn.execute(
            "UPDATE reset_requests SET status = 'APPROVED', decided_by = ?, decided_at = ? "
            "WHERE status = 'PENDING'",
            (approver, at.isoformat()),
        )
        old = self.tier
        self._set_tier(
            KillTier.NORMAL,
            at,
            f"reset requested by {pending.requested_by}, approved by {approver} "
            f"(wall clock {wall})",
            {"requested_by": pending.requested_by, "approver": approver, "wall_clock": wall},
        )
        self.audit.append(
            "KILL_SWITCH_RESET",
            ACTOR,
            at,
            {"from": old.name, "requested_by": pending.requested_by, "approver": approver},
        )
        equity = self.state.get_meta("prev_equity")
        if equity is not None:
            self.peak_equity = Decimal(equity)
            self.state.set_meta("peak_equity", self.peak_equity)
        return ResetResult(
            True, f"kill tier reset {old.name} -> NORMAL (approved by {approver})", self.tier
        )

    # ----- what the screen sees --------------------------------------------------------
    def status(
        self,
        weights: Mapping[str, float],
        context: RiskContext,
        vol_realised: float = 0.0,
    ) -> RiskStatus:
        """Tier, history, each limit's usage by `weights`, CVaR, vol, correlations, cuts."""
        limits = self.limits
        sectors = sector_exposures(weights, context.sectors)
        held = sorted(s for s, w in weights.items() if abs(w) > 1e-12 and s in context.symbols)
        window = context.window(limits)
        cols = [context.symbols.index(s) for s in held]
        corr_rows: tuple[tuple[float, ...], ...] = ()
        worst_group = 0.0
        if len(cols) >= 2 and window.shape[0] >= 3:
            sub = window[:, cols]
            corr = np.nan_to_num(np.corrcoef(sub, rowvar=False))
            corr_rows = tuple(tuple(float(x) for x in row) for row in corr)
            for group in correlated_groups(held, sub, limits.correlation_threshold):
                worst_group = max(worst_group, sum(abs(weights[s]) for s in group))
        hist, param = book_cvar(weights, context, limits)
        vol = book_volatility(weights, context, limits)
        usage = (
            LimitUsage(
                "position",
                max((abs(w) for w in weights.values()), default=0.0),
                limits.max_position_weight,
            ),
            LimitUsage("sector", max(sectors.values(), default=0.0), limits.max_sector_weight),
            LimitUsage("correlated", worst_group, limits.max_correlated_weight),
            LimitUsage("gross", gross_leverage(weights), limits.max_gross_leverage),
            LimitUsage("net", abs(net_leverage(weights)), limits.max_net_leverage),
            LimitUsage("vol", vol, limits.vol_target),
            LimitUsage("cvar", max(hist, param), limits.cvar_limit),
        )
        return RiskStatus(
            tier=self.tier,
            tier_history=self._tier_history(),
            limits=usage,
            cvar_historical=hist,
            cvar_parametric=param,
            cvar_limit=limits.cvar_limit,
            vol_target=limits.vol_target,
            vol_realised=vol_realised,
            vol_ex_ante=vol,
            correlation_symbols=tuple(held) if corr_rows else (),
            correlations=corr_rows,
            cuts=self._cuts(),
            pending_reset=self.pending_reset(),
            operators=tuple(self.operators.names()),
        )

    def _tier_history(self, limit: int = 20) -> tuple[TierChangeRow, ...]:
        rows = self.state.conn.execute(
            "SELECT at, detail FROM risk_events WHERE kind = 'TIER_CHANGE' "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        history = []
        for at, detail in rows:
            move, _, why = detail.partition(": ")
            before, _, after = move.partition(" -> ")
            history.append(TierChangeRow(at[:10], before, after, why))
        return tuple(history)

    def _cuts(self, limit: int = 50) -> tuple[RiskCutRow, ...]:
        rows = self.state.conn.execute(
            "SELECT at, kind, coalesce(symbol, ''), detail FROM risk_events "
            "WHERE kind IN ('ORDER_CUT', 'ORDER_BLOCKED') ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return tuple(RiskCutRow(r[0][:10], r[1], r[2], r[3]) for r in rows)
