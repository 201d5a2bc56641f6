"""The operator's risk commands: the risk status, kill-switch resets, emergency flatten.

`risk.*` protocol commands bound on the engine (as `strategy_commands` binds the
strategy ones); a reset or an operator change is one transaction, then a new snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from qgtm.core import calendar
from qgtm.core.enums import KillTier
from qgtm.core.risk_status import ResetResult, RiskStatus
from qgtm.engine.live.parts import LiveEngine
from qgtm.engine.live.projection import build_snapshot
from qgtm.engine.live.sessions import flatten_now, risk_context, trailing_returns


def register_risk_commands(engine: LiveEngine) -> None:
    engine.bind("risk.status", partial(risk_status, engine))
    engine.bind("risk.request_reset", partial(_request_reset, engine))
    engine.bind("risk.approve_reset", partial(_approve_reset, engine))
    engine.bind("risk.add_operator", partial(_add_operator, engine))


def risk_status(engine: LiveEngine) -> RiskStatus:
    """The risk manager's view of the book at the last close."""
    last = max(engine.next_index - 1, 0)
    marks = engine._marks(last)
    returns = trailing_returns(
        engine.panel.history_before(last + 1), engine.config.risk.risk_lookback
    )
    curve = [e for _, e in engine.state.equity_curve(64)]
    realised = (
        float(np.std(np.diff(curve) / np.array(curve[:-1]), ddof=1) * np.sqrt(252))
        if len(curve) > 2
        else 0.0
    )
    return engine.risk.status(engine.book.weights(marks), risk_context(engine, returns), realised)


def _operator_command(engine: LiveEngine, action: Callable[[], ResetResult]) -> ResetResult:
    with engine.state.transaction():
        result = action()
        engine._flush_alerts()
    engine._snapshot = build_snapshot(engine)
    return result


def _request_reset(engine: LiveEngine, operator: str, passphrase: str) -> ResetResult:
    return _operator_command(engine, lambda: engine.risk.request_reset(operator, passphrase))


def _approve_reset(engine: LiveEngine, approver: str, passphrase: str) -> ResetResult:
    return _operator_command(engine, lambda: engine.risk.approve_reset(approver, passphrase))


def _add_operator(engine: LiveEngine, operator: str, passphrase: str) -> ResetResult:
    def add() -> ResetResult:
        engine.risk.add_operator(operator, passphrase)
        return ResetResult(True, f"operator {operator} added", engine.kill_tier)

    return _operator_command(engine, add)


def emergency_flatten(engine: LiveEngine, reason: str, actor: str = "watchdog") -> int:
    """Escalate to FLATTEN and send closing orders now; the caller holds the step lock.

    Returns how many closing orders were sent. Used by the dead-man's switch.
    """
    at = engine._snapshot.sim_time if engine._snapshot and engine._snapshot.sim_time else None
    at = at or calendar.session_close(engine.panel.dates[max(engine.next_index - 1, 0)])
    with engine.state.transaction():
        engine.audit.append("EMERGENCY_FLATTEN", actor, at, {"reason": reason})
        if engine.kill_tier < KillTier.FLATTEN:
            engine.risk.trip(KillTier.FLATTEN, at, f"{actor}: {reason}")
        else:
            flatten_now(engine, at)
        engine.alert(f"EMERGENCY FLATTEN ({actor}): {reason}", source=actor)
        engine._flush_alerts()
    if engine.broker.commit_before_send:  # committed first, then sent (no step will)
        engine.oms.dispatch(at)
    engine._snapshot = build_snapshot(engine)
    return len(engine.broker.open_orders())
