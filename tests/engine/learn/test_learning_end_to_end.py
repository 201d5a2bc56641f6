"""The whole self-learning sequence on the demo market, through the real engine."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from qgtm.core.config import Config, EngineConfig, LearnConfig
from qgtm.engine.learn.registry import ModelStage, PromotionRefusedError
from qgtm.engine.live.engine import TradingEngine
from tests.conftest import SHORT_DEMO

# Windows scaled to a 2.5-year demo market; the gates are opened wide so a retrain that
# finds better in-sample parameters is staged and the shadow comparison decides.
LEARN = LearnConfig(
    window=42,
    warning_sharpe=0.0,
    decayed_sharpe=-1.0,
    training_window=300,
    walk_forward_train=126,
    walk_forward_test=42,
    pbo_splits=6,
    min_oos_sharpe=-10.0,
    max_pbo=1.0,
    shadow_sessions=30,
    cooldown_sessions=60,
)
SEQUENCE = {
    "RETRAIN_TRIGGERED",
    "RETRAIN_FAILED",
    "MODEL_STAGED",
    "SHADOW_STARTED",
    "SHADOW_PASSED",
    "SHADOW_FAILED",
    "MODEL_ARCHIVED",
    "MODEL_PROMOTED",
}


def _config() -> Config:
    return replace(Config(), demo=SHORT_DEMO, engine=EngineConfig(speed=0.0), learn=LEARN)


def _learning_events(engine: TradingEngine) -> list[tuple[str, dict]]:
    rows = engine.state.conn.execute("SELECT event, payload FROM audit ORDER BY seq").fetchall()
    return [(event, json.loads(payload)) for event, payload in rows if event in SEQUENCE]


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory) -> TradingEngine:
    engine = TradingEngine(_config(), tmp_path_factory.mktemp("learn"))
    while engine.current_session is None or engine.current_session.isoformat() < "2009-11-01":
        assert engine.step()
    yield engine
    engine.close()


def test_decay_triggers_retrain_then_stage_shadow_and_a_verdict_in_order(learned):
    events = [e for e, _ in _learning_events(learned)]
    first_staged = events.index("MODEL_STAGED")
    assert "RETRAIN_TRIGGERED" in events[:first_staged]
    verdict = events[first_staged:].index("SHADOW_STARTED") + first_staged
    assert events[verdict + 1] in {"SHADOW_PASSED", "SHADOW_FAILED"}
    if events[verdict + 1] == "SHADOW_FAILED":
        assert events[verdict + 2] == "MODEL_ARCHIVED"
    else:
        assert events[verdict + 2 : verdict + 4] == ["MODEL_ARCHIVED", "MODEL_PROMOTED"]


def test_every_retrain_is_triggered_by_a_decay_report(learned):
    triggers = [p for e, p in _learning_events(learned) if e == "RETRAIN_TRIGGERED"]
    outcomes = [e for e, _ in _learning_events(learned) if e in {"RETRAIN_FAILED", "MODEL_STAGED"}]
    assert len(outcomes) == len(triggers)
    assert all(p["status"] in {"WARNING", "DECAYED"} and p["reasons"] for p in triggers)


def test_failed_gates_are_logged_with_the_reason(learned):
    failures = [p for e, p in _learning_events(learned) if e == "RETRAIN_FAILED"]
    assert failures and all(p["reason"] for p in failures)


class _Rollback(Exception):
    """Undo the probe's writes so the module's engine is left as it was."""


def test_no_code_path_promotes_a_candidate_whose_shadow_run_is_missing_or_unfinished(learned):
    registry = learned.learn.registry
    with pytest.raises(_Rollback), learned.state.transaction():
        candidate = registry.register("tsmom", {"lookback": 100.0}, ModelStage.STAGING, "probe")
        with pytest.raises(PromotionRefusedError, match="no shadow run"):
            registry.promote(candidate.model_id, 10_000, "probe")
        run = registry.start_shadow(candidate.model_id, "probe")
        with pytest.raises(PromotionRefusedError, match="no completed, passed shadow run"):
            registry.promote(candidate.model_id, run.run_id, "probe")
        raise _Rollback


def test_decay_history_and_models_reach_the_terminal_commands(learned):
    status = learned.call("learn.status")
    assert (status[0].strategy == "tsmom" and status[0].production == "tsmom@v1") or status
    history = learned.call("learn.history", strategy="tsmom")
    assert len(history) > 100 and {h.status for h in history} >= {"HEALTHY"}
    models = learned.call("learn.models")
    assert models[0].model_id == "tsmom@v1"


def test_a_restart_trades_the_production_version_and_resumes_pending_jobs(tmp_path: Path):
    first = TradingEngine(_config(), tmp_path)
    for _ in range(80):
        first.step()
    first.close()
    again = TradingEngine(_config(), tmp_path)
    production = again.learn.registry.production("tsmom")
    assert production is not None
    assert again.strategies[0].params == production.params
    again.close()


def test_retrains_run_in_a_spawned_process_not_a_fork(learned):
    """The engine's process runs threads (step loop, terminal): forking it could hand the
    retrain child a lock some other thread held. The retrain pool spawns a fresh one."""
    executor = learned.learn._executor_or_default()
    assert executor._mp_context.get_start_method() == "spawn"


def test_the_retrain_worker_never_receives_ctrl_c(learned: TradingEngine) -> None:
    """Ctrl+C on a foreground daemon reaches its whole process group; the retrain
    worker keeps SIGINT blocked (ctrl_c_left_to_parent), so only the daemon handles it
    and no worker prints a KeyboardInterrupt traceback on the way out."""
    import multiprocessing
    import signal

    workers = [p for p in multiprocessing.active_children() if p.pid is not None]
    assert workers, "the learning loop has a worker by now"
    for worker in workers:
        status = Path(f"/proc/{worker.pid}/status").read_text()
        blocked = int(
            next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16
        )
        assert blocked & (1 << (signal.SIGINT - 1)), worker.name
