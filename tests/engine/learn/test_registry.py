import sqlite3
from pathlib import Path

import pytest

from qgtm.engine.audit import AuditLog
from qgtm.engine.learn.registry import ModelRegistry, ModelStage, PromotionRefusedError


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    return ModelRegistry(conn, AuditLog(conn), tmp_path / "artifacts")


def _events(registry: ModelRegistry) -> list[str]:
    return [r.event for r in reversed(registry._audit.tail(100))]


def _staged(registry: ModelRegistry) -> tuple[str, str]:
    prod = registry.register("tsmom", {"lookback": 252}, ModelStage.PRODUCTION, "2020-01-02")
    cand = registry.register("tsmom", {"lookback": 126}, ModelStage.STAGING, "2020-06-01")
    return prod.model_id, cand.model_id


def test_no_promotion_without_a_completed_shadow_run(registry: ModelRegistry):
    _, cand = _staged(registry)
    run = registry.start_shadow(cand, "2020-06-01")
    with pytest.raises(PromotionRefusedError, match="no completed, passed shadow run"):
        registry.promote(cand, run.run_id, "2020-06-02")
    assert registry.get(cand).stage is ModelStage.STAGING


def test_no_promotion_after_a_failed_shadow_run(registry: ModelRegistry):
    _, cand = _staged(registry)
    run = registry.start_shadow(cand, "2020-06-01")
    registry.complete_shadow(run.run_id, "2020-12-01", 0.2, 0.5, 0.6, passed=False)
    with pytest.raises(PromotionRefusedError):
        registry.promote(cand, run.run_id, "2020-12-01")


def test_passed_shadow_promotes_candidate_and_archives_production(registry: ModelRegistry):
    prod, cand = _staged(registry)
    run = registry.start_shadow(cand, "2020-06-01")
    registry.complete_shadow(run.run_id, "2020-12-01", 0.9, 0.3, 0.01, passed=True)
    registry.promote(cand, run.run_id, "2020-12-01")
    assert registry.production("tsmom").model_id == cand
    assert registry.get(prod).stage is ModelStage.ARCHIVED
    assert _events(registry) == [
        "MODEL_REGISTERED",
        "MODEL_STAGED",
        "SHADOW_STARTED",
        "SHADOW_PASSED",
        "MODEL_ARCHIVED",
        "MODEL_PROMOTED",
    ]


def test_a_second_production_version_cannot_be_registered_directly(registry: ModelRegistry):
    _staged(registry)
    with pytest.raises(PromotionRefusedError, match="start in STAGING"):
        registry.register("tsmom", {"lookback": 63}, ModelStage.PRODUCTION, "2021-01-04")


def test_artifacts_are_content_hashed_and_tampering_is_detected(registry: ModelRegistry):
    prod, _ = _staged(registry)
    model = registry.get(prod)
    assert registry.verify_artifact(model)
    path = registry.artifacts_dir / f"{model.artifact_sha256}.json"
    path.write_bytes(path.read_bytes().replace(b"252", b"253"))
    assert not registry.verify_artifact(model)
