"""The engine's risk commands (what the terminal and CLI call) on a real demo run."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from qgtm.core.config import Config
from qgtm.core.enums import KillTier
from qgtm.core.risk_status import ResetResult, RiskStatus
from qgtm.core.types import RiskLimits
from qgtm.engine.live.engine import TradingEngine


@pytest.fixture
def flattened(tmp_path: Path, short_config: Config):
    tight = replace(short_config, risk=RiskLimits(max_drawdown_pct=0.005))
    engine = TradingEngine(tight, tmp_path)
    while engine.kill_tier < KillTier.FLATTEN:
        assert engine.step()
    yield engine
    engine.close()


def test_two_operators_reset_a_flattened_engine_through_its_commands(flattened):
    engine = flattened
    engine.call("risk.add_operator", operator="alice", passphrase="alice passphrase")
    engine.call("risk.add_operator", operator="bob", passphrase="bob passphrase")
    asked = engine.call("risk.request_reset", operator="alice", passphrase="alice passphrase")
    assert isinstance(asked, ResetResult) and asked.ok
    assert engine.snapshot().risk.pending_reset.requested_by == "alice"
    refused = engine.call("risk.approve_reset", approver="alice", passphrase="alice passphrase")
    assert not refused.ok
    approved = engine.call("risk.approve_reset", approver="bob", passphrase="bob passphrase")
    assert approved.ok
    assert engine.snapshot().kill_tier is KillTier.NORMAL
    assert engine.snapshot().risk.tier_history[0].to_tier == "NORMAL"


def test_a_reset_is_stamped_with_the_replay_session_not_the_wall_clock_date(flattened):
    """The kill-tier history is in the book's (simulated) time: escalation and reset of a
    replay carry its session dates; the wall-clock time of the approval rides along in
    the detail (and in the audit record's recorded_at)."""
    engine = flattened
    session = engine.current_session.isoformat()
    engine.call("risk.add_operator", operator="alice", passphrase="alice passphrase")
    engine.call("risk.add_operator", operator="bob", passphrase="bob passphrase")
    engine.call("risk.request_reset", operator="alice", passphrase="alice passphrase")
    engine.call("risk.approve_reset", approver="bob", passphrase="bob passphrase")
    reset, flatten = engine.snapshot().risk.tier_history[:2]
    today = datetime.now(UTC).date().isoformat()
    assert (reset.to_tier, flatten.to_tier) == ("NORMAL", "FLATTEN")
    assert reset.at == flatten.at == session != today
    assert f"wall clock {today}" in reset.detail
    audit = engine.audit.tail(20)
    approved = next(r for r in audit if r.event == "KILL_SWITCH_RESET")
    assert approved.sim_time.startswith(session)


def test_the_tier_survives_an_engine_restart(tmp_path: Path, short_config: Config):
    tight = replace(short_config, risk=RiskLimits(max_drawdown_pct=0.005))
    engine = TradingEngine(tight, tmp_path)
    while engine.kill_tier < KillTier.FLATTEN:
        engine.step()
    engine.close()
    again = TradingEngine(tight, tmp_path)
    assert again.kill_tier is KillTier.FLATTEN
    again.close()


def test_risk_status_reports_every_limit_with_its_usage(tmp_path: Path, short_config: Config):
    engine = TradingEngine(short_config, tmp_path)
    for _ in range(30):
        engine.step()
    status = engine.call("risk.status")
    engine.close()
    assert isinstance(status, RiskStatus)
    assert [u.name for u in status.limits] == [
        "position",
        "sector",
        "correlated",
        "gross",
        "net",
        "vol",
        "cvar",
    ]
    for usage in status.limits:
        assert usage.value <= usage.limit * 1.05  # the book stays near its limits (drift only)
    assert status.cvar_limit == short_config.risk.cvar_limit
    assert len(status.correlations) == len(status.correlation_symbols)
