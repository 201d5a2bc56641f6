"""RiskManager: the escalation walk on scripted P&L, two-person resets, restart survival."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from qgtm.core.enums import KillTier
from qgtm.core.types import RiskLimits
from qgtm.engine.audit import AuditLog
from qgtm.engine.risk.checks import RiskContext
from qgtm.engine.risk.manager import RiskManager
from qgtm.engine.risk.operators import OperatorError
from qgtm.engine.state import StateStore

LIMITS = RiskLimits(daily_loss_limit=0.05, max_drawdown_pct=0.25)
START = Decimal(1_000_000)
DAY0 = datetime(2024, 3, 1, 21, tzinfo=UTC)
ALICE, BOB = ("alice", "correct horse 1"), ("bob", "battery staple 2")


class World:
    """A state directory with its store, audit log, risk manager and what it told the owner."""

    def __init__(self, data_dir: Path, limits: RiskLimits = LIMITS) -> None:
        self.state = StateStore(data_dir)
        self.audit = AuditLog(self.state.conn)
        self.alerts: list[str] = []
        self.flattens: list[datetime] = []
        self.risk = RiskManager(
            self.state, self.audit, limits, START, self.alerts.append, self.flattens.append
        )

    def pnl(self, day: int, daily_pnl: int, equity: int) -> KillTier:
        with self.state.transaction():
            return self.risk.update_pnl(
                Decimal(daily_pnl), Decimal(equity), DAY0 + timedelta(days=day)
            )

    def events(self, *names: str) -> list[tuple[str, dict]]:
        return [(r.event, r.payload) for r in reversed(self.audit.tail(1000)) if r.event in names]

    def do(self, action):
        with self.state.transaction():
            return action()


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def _escalate_to_flatten(world: World) -> None:
    # L = 5% of the equity before the day. -26k < -50% of 50k: WARN.
    assert world.pnl(1, -26_000, 974_000) is KillTier.WARN
    # L = 48,700: -37k < -75% (-36,525): THROTTLE.
    assert world.pnl(2, -37_000, 937_000) is KillTier.THROTTLE
    # L = 46,850: -47k < -100%: NO_NEW (drawdown 11% is inside 25%).
    assert world.pnl(3, -47_000, 890_000) is KillTier.NO_NEW
    # Drawdown 26% from the 1,000,000 peak: FLATTEN.
    assert world.pnl(4, -150_000, 740_000) is KillTier.FLATTEN


def test_scripted_pnl_walks_normal_warn_throttle_no_new_flatten_with_audit_in_order(world):
    assert world.pnl(0, 1_000, 1_000_000) is KillTier.NORMAL
    _escalate_to_flatten(world)
    world.do(lambda: world.risk.flatten_complete(0, Decimal(738_000), DAY0 + timedelta(days=5)))

    changes = world.events("TIER_CHANGE", "EMERGENCY_FLATTEN_COMPLETE")
    assert [(e, p.get("from"), p.get("to")) for e, p in changes] == [
        ("TIER_CHANGE", "NORMAL", "WARN"),
        ("TIER_CHANGE", "WARN", "THROTTLE"),
        ("TIER_CHANGE", "THROTTLE", "NO_NEW"),
        ("TIER_CHANGE", "NO_NEW", "FLATTEN"),
        ("EMERGENCY_FLATTEN_COMPLETE", None, None),
    ]
    assert [a.split(" — ")[1] for a in world.alerts] == [
        "WARN: approaching daily loss limit",
        "THROTTLE: sizes reduced 50%",
        "NO_NEW: new positions blocked",
        "FLATTEN: emergency liquidation",
    ]
    assert world.flattens == [DAY0 + timedelta(days=4)]  # the OMS was told to flatten once
    assert world.audit.verify() is None


def test_every_pnl_update_is_audited_even_without_a_tier_change(world):
    world.pnl(0, 1_000, 1_000_000)
    world.pnl(1, 2_000, 1_002_000)
    assert [p["tier"] for _, p in world.events("RISK_PNL_CHECK")] == ["NORMAL", "NORMAL"]


def test_tiers_never_step_down_on_their_own(world):
    world.pnl(1, -40_000, 960_000)
    assert world.pnl(2, 80_000, 1_040_000) is KillTier.THROTTLE


def test_a_big_loss_jumps_tiers_in_one_logged_change(world):
    assert world.pnl(1, -60_000, 940_000) is KillTier.NO_NEW
    assert [(p["from"], p["to"]) for _, p in world.events("TIER_CHANGE")] == [("NORMAL", "NO_NEW")]


def test_flatten_complete_is_logged_once_and_only_with_an_empty_book(world):
    _escalate_to_flatten(world)
    assert not world.do(lambda: world.risk.flatten_complete(3, Decimal(1), DAY0))
    assert world.do(lambda: world.risk.flatten_complete(0, Decimal(1), DAY0))
    assert not world.do(lambda: world.risk.flatten_complete(0, Decimal(1), DAY0))
    assert len(world.events("EMERGENCY_FLATTEN_COMPLETE")) == 1


# ----- two-person reset -----------------------------------------------------------------
def _with_operators(world: World) -> World:
    world.do(lambda: world.risk.add_operator(*ALICE))
    world.do(lambda: world.risk.add_operator(*BOB))
    return world


def test_self_approval_is_refused_and_logged(world):
    _with_operators(world)
    _escalate_to_flatten(world)
    assert world.do(lambda: world.risk.request_reset(*ALICE)).ok
    result = world.do(lambda: world.risk.approve_reset(*ALICE))
    assert not result.ok
    assert "cannot approve" in result.message
    assert world.risk.tier is KillTier.FLATTEN
    refused = world.events("KILL_SWITCH_RESET_REFUSED")
    assert refused == [
        (
            "KILL_SWITCH_RESET_REFUSED",
            {"operator": "alice", "reason": "self-approval: approver is the requester"},
        )
    ]
    assert world.risk.pending_reset() is not None  # still waiting for a second operator


def test_two_person_reset_returns_to_normal_and_logs_both_names(world):
    _with_operators(world)
    _escalate_to_flatten(world)
    world.do(lambda: world.risk.request_reset(*ALICE))
    result = world.do(lambda: world.risk.approve_reset(*BOB))
    assert result.ok and result.tier is KillTier.NORMAL
    assert world.risk.tier is KillTier.NORMAL
    assert world.risk.pending_reset() is None
    assert world.events("KILL_SWITCH_RESET")[-1][1] == {
        "from": "FLATTEN",
        "requested_by": "alice",
        "approver": "bob",
    }
    last_change = world.events("TIER_CHANGE")[-1][1]
    assert (last_change["from"], last_change["to"]) == ("FLATTEN", "NORMAL")


def test_approval_with_a_wrong_passphrase_is_refused_and_logged(world):
    _with_operators(world)
    _escalate_to_flatten(world)
    world.do(lambda: world.risk.request_reset(*ALICE))
    result = world.do(lambda: world.risk.approve_reset("bob", "not bobs passphrase"))
    assert not result.ok
    assert world.risk.tier is KillTier.FLATTEN
    assert world.events("OPERATOR_AUTH_FAILED")[-1][1] == {
        "operator": "bob",
        "for": "approve_reset",
    }


def test_unknown_operator_cannot_request_a_reset(world):
    _escalate_to_flatten(world)
    assert not world.do(lambda: world.risk.request_reset("mallory", "whatever123")).ok
    assert world.risk.pending_reset() is None


def test_reset_from_normal_is_refused(world):
    _with_operators(world)
    assert not world.do(lambda: world.risk.request_reset(*ALICE)).ok


def test_passphrases_are_never_stored_or_logged_in_clear(tmp_path: Path):
    world = _with_operators(World(tmp_path))
    _escalate_to_flatten(world)
    world.do(lambda: world.risk.request_reset(*ALICE))
    world.do(lambda: world.risk.approve_reset(*BOB))
    world.state.conn.execute("PRAGMA wal_checkpoint(FULL)")
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for _, passphrase in (ALICE, BOB):
        assert passphrase.encode() not in raw


def test_operator_names_and_passphrases_are_validated(world):
    with pytest.raises(OperatorError, match="at least 8"):
        world.do(lambda: world.risk.add_operator("carol", "short"))
    with pytest.raises(OperatorError, match="operator name"):
        world.do(lambda: world.risk.add_operator("Carol Smith", "long enough pass"))
    _with_operators(world)
    with pytest.raises(OperatorError, match="already exists"):
        world.do(lambda: world.risk.add_operator(*ALICE))


# ----- restart survival -----------------------------------------------------------------
def test_tier_and_pending_reset_survive_a_restart(tmp_path: Path):
    world = _with_operators(World(tmp_path))
    _escalate_to_flatten(world)
    world.do(lambda: world.risk.request_reset(*ALICE))
    world.state.close()

    again = World(tmp_path)
    assert again.risk.tier is KillTier.FLATTEN
    assert again.risk.pending_reset().requested_by == "alice"
    assert again.do(lambda: again.risk.approve_reset(*BOB)).ok


def test_limits_in_force_are_stored_and_a_change_is_audited(tmp_path: Path):
    world = World(tmp_path)
    assert world.do(lambda: world.risk.sync_limits(DAY0))
    assert not world.do(lambda: world.risk.sync_limits(DAY0))
    world.state.close()
    tighter = World(tmp_path, replace(LIMITS, max_position_weight=0.1))
    assert tighter.do(lambda: tighter.risk.sync_limits(DAY0))
    event, payload = tighter.events("LIMITS_SET", "LIMITS_CHANGED")[-1]
    assert event == "LIMITS_CHANGED"
    assert payload["changed"] == {"max_position_weight": [0.2, 0.1]}


# ----- pre-trade through the manager ------------------------------------------------------
def test_every_check_and_every_cut_is_audited(world):
    context = RiskContext(symbols=("GLD",), sectors={"GLD": "precious"})
    at = DAY0
    world.do(lambda: world.risk.check({"GLD": 0.5}, {}, context, at))
    checks = world.events("RISK_CHECK")[-1][1]["checks"]
    assert [c["check"] for c in checks][:2] == ["kill_tier", "position"]
    assert checks[1]["action"] == "cut"
    cut = world.events("RISK_CUT")[-1][1]
    assert cut["detail"] == "GLD +0.5000 -> +0.2000: position cap 20%"
    kinds = [r[0] for r in world.state.conn.execute("SELECT kind FROM risk_events")]
    assert kinds == ["ORDER_CUT"]


def test_a_block_under_no_new_is_a_kill_switch_block(world):
    world.pnl(1, -60_000, 940_000)
    context = RiskContext(symbols=("GLD",), sectors={"GLD": "precious"})
    result = world.do(lambda: world.risk.check({"GLD": 0.1}, {}, context, DAY0))
    assert result.approved == {"GLD": 0.0}
    assert world.events("KILL_SWITCH_BLOCK")[-1][1]["kind"] == "ORDER_BLOCKED"


# ----- Kelly history ---------------------------------------------------------------------
def test_strategy_returns_are_paper_returns_of_the_proposed_sleeves_by_hand(world):
    import numpy as np

    closes = np.array([[100.0, 50.0], [110.0, 50.0], [99.0, 55.0], [99.0, 44.0]])
    symbols = ("GLD", "USO")
    world.do(lambda: world.risk.record_sleeves(0, {"tsmom": {"GLD": 0.2, "USO": -0.2}}))
    world.do(lambda: world.risk.record_sleeves(1, {"tsmom": {"GLD": 0.5}}))
    world.do(lambda: world.risk.record_sleeves(2, {"tsmom": {"USO": 0.1}}))
    history = world.risk.strategy_returns(4, closes, symbols)
    # session 0 sleeve over close0->close1: (0.2*0.10 - 0.2*0.0)/0.4 = 0.05
    # session 1 sleeve over close1->close2: 0.5*(-0.10)/0.5 = -0.10
    # session 2 sleeve over close2->close3: 0.1*(-0.20)/0.1 = -0.20
    assert history["tsmom"] == pytest.approx([0.05, -0.10, -0.20])
    # At decision 3 the session-2 sleeve's day (close2->close3) is not known yet.
    assert world.risk.strategy_returns(3, closes[:3], symbols)["tsmom"] == pytest.approx(
        [0.05, -0.10]
    )


def test_strategy_returns_refuse_closes_from_the_decision_day_on(world):
    import numpy as np

    with pytest.raises(ValueError, match="must not see"):
        world.risk.strategy_returns(2, np.ones((3, 1)), ("GLD",))
