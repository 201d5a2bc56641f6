"""Risk administration on a book whose engine is not running (the `qgtm risk` commands).

Takes the engine lock for the duration, so it can never race a running engine; with an
engine running, use the terminal's palette commands instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from qgtm.core.config import Config
from qgtm.engine.audit import AuditLog
from qgtm.engine.lock import EngineLock, EngineLockedError
from qgtm.engine.risk.checks import RiskContext
from qgtm.engine.risk.manager import RiskManager
from qgtm.engine.state import STATE_DB, StateStore


class RiskAdminError(RuntimeError):
    """The book cannot be administered now (no book yet, or an engine owns it)."""


@contextmanager
def offline_risk(data_dir: Path, config: Config) -> Iterator[RiskManager]:
    """A RiskManager on the stored book, inside one transaction, with the engine lock held."""
    if not (data_dir / STATE_DB).exists():
        raise RiskAdminError(f"no book in {data_dir} yet: run `qgtm` or `qgtm --daemon` first")
    lock = EngineLock(data_dir)
    try:
        lock.acquire()
    except EngineLockedError as exc:
        raise RiskAdminError(
            f"{exc}; use the terminal's palette (risk: Request / Approve kill-switch reset)"
        ) from None
    state = StateStore(data_dir)
    try:
        risk = RiskManager(
            state, AuditLog(state.conn), config.risk, Decimal(config.engine.initial_cash)
        )
        with state.transaction():
            yield risk
    finally:
        state.close()
        lock.release()


def status_lines(risk: RiskManager) -> list[str]:
    """What `qgtm risk status` prints: tier, pending reset, operators, history, cuts, limits."""
    lines = [f"kill tier    {risk.tier.name}"]
    pending = risk.pending_reset()
    if pending is not None:
        lines.append(
            f"pending      reset from {pending.from_tier} requested by {pending.requested_by} "
            f"at {pending.requested_at[:19]}; needs a second operator"
        )
    lines.append(f"operators    {', '.join(risk.operators.names()) or 'none'}")
    stored = risk.state.get_meta("risk_limits")
    limits = json.loads(stored) if stored else {}
    for key, value in sorted(limits.items()):
        lines.append(f"  limit {key:<24} {value}")
    history = risk.status({}, RiskContext()).tier_history
    for change in history[:10]:
        lines.append(f"  {change.at} {change.from_tier} -> {change.to_tier}  {change.detail}")
    return lines
