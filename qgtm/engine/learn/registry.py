"""Model registry: versions of each strategy's parameters with a lifecycle stage.

STAGING -> PRODUCTION happens only through `promote`, which demands a completed, passed
shadow run of that very candidate against the current production version. Every stage
change is audited. Artifacts are JSON files named by their SHA-256 under
<data-dir>/artifacts/models/, so a version's content can be verified at any time.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from qgtm.engine.audit import AuditLog
from qgtm.engine.state_schema import migrate


class ModelStage(StrEnum):
    """Lifecycle stage of a model version."""

    STAGING = "STAGING"
    PRODUCTION = "PRODUCTION"
    ARCHIVED = "ARCHIVED"


class PromotionRefusedError(RuntimeError):
    """A promotion without a completed, passed shadow run of that candidate."""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version of a strategy's parameters."""

    model_id: str
    strategy: str
    version: int
    stage: ModelStage
    params: dict[str, float]
    artifact_sha256: str
    train_start: str | None
    train_end: str | None
    metrics: dict[str, Any]
    data_hash: str
    created_session: str


@dataclass(frozen=True, slots=True)
class ShadowRun:
    """A candidate paper-trading beside production; verdict fields set on completion."""

    run_id: int
    strategy: str
    candidate_id: str
    production_id: str
    start_session: str
    end_session: str | None
    status: str
    sessions: int
    candidate_sharpe: float | None
    production_sharpe: float | None
    p_value: float | None
    passed: bool | None


_MODEL_COLUMNS = (
    "model_id, strategy, version, stage, params, artifact_sha256, train_start, train_end, "
    "metrics, data_hash, created_session"
)
_SHADOW_COLUMNS = (
    "run_id, strategy, candidate_id, production_id, start_session, end_session, status, "
    "sessions, candidate_sharpe, production_sharpe, p_value, passed"
)


def _model(row: tuple) -> ModelVersion:
    return ModelVersion(
        model_id=row[0],
        strategy=row[1],
        version=row[2],
        stage=ModelStage(row[3]),
        params=json.loads(row[4]),
        artifact_sha256=row[5],
        train_start=row[6],
        train_end=row[7],
        metrics=json.loads(row[8]),
        data_hash=row[9],
        created_session=row[10],
    )


def _shadow(row: tuple) -> ShadowRun:
    return ShadowRun(*row[:11], passed=None if row[11] is None else bool(row[11]))


class ModelRegistry:
    """Versions, stages and shadow runs in state.sqlite; callers own the transaction."""

    def __init__(self, conn: sqlite3.Connection, audit: AuditLog, artifacts_dir: Path) -> None:
        self._conn = conn
        self._audit = audit
        self.artifacts_dir = artifacts_dir / "models"
        migrate(conn)  # tables: state_schema

    # ----- artifacts ---------------------------------------------------------------
    def _write_artifact(self, payload: dict[str, Any]) -> str:
        body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        digest = hashlib.sha256(body).hexdigest()
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        path = self.artifacts_dir / f"{digest}.json"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(body)
            tmp.replace(path)
        return digest

    def verify_artifact(self, model: ModelVersion) -> bool:
        """True if the artifact file exists and still hashes to its recorded SHA-256."""
        path = self.artifacts_dir / f"{model.artifact_sha256}.json"
        if not path.exists():
            return False
        return hashlib.sha256(path.read_bytes()).hexdigest() == model.artifact_sha256

    # ----- versions ----------------------------------------------------------------
    def register(
        self,
        strategy: str,
        params: dict[str, float],
        stage: ModelStage,
        session: str,
        *,
        train_window: tuple[str, str] | None = None,
        metrics: dict[str, Any] | None = None,
        data_hash: str = "",
        actor: str = "learn",
    ) -> ModelVersion:
        """Add a version. Only STAGING or, for a strategy's first version, PRODUCTION."""
        if stage is ModelStage.PRODUCTION and self.production(strategy) is not None:
            raise PromotionRefusedError(
                f"{strategy} already has a production model; new versions start in STAGING"
            )
        row = self._conn.execute(
            "SELECT coalesce(max(version), 0) FROM models WHERE strategy = ?", (strategy,)
        ).fetchone()
        version = row[0] + 1
        model_id = f"{strategy}@v{version}"
        metrics = metrics or {}
        digest = self._write_artifact({"strategy": strategy, "params": params, "metrics": metrics})
        start, end = train_window or (None, None)
        self._conn.execute(
            f"INSERT INTO models ({_MODEL_COLUMNS}, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                model_id,
                strategy,
                version,
                stage.value,
                json.dumps(params, sort_keys=True),
                digest,
                start,
                end,
                json.dumps(metrics, sort_keys=True, default=float),
                data_hash,
                session,
                datetime.now(UTC).isoformat(),
            ),
        )
        event = "MODEL_STAGED" if stage is ModelStage.STAGING else "MODEL_REGISTERED"
        self._audit.append(
            event,
            actor,
            session,
            {"model_id": model_id, "stage": stage.value, "params": params, "sha256": digest},
        )
        return self.get(model_id)

    def get(self, model_id: str) -> ModelVersion:
        """The version `model_id`; KeyError naming it if unknown."""
        row = self._conn.execute(
            f"SELECT {_MODEL_COLUMNS} FROM models WHERE model_id = ?", (model_id,)
        ).fetchone()
        if row is None:
            raise KeyError(f"no model {model_id!r}")
        return _model(row)

    def production(self, strategy: str) -> ModelVersion | None:
        """The PRODUCTION version of `strategy`, if any."""
        row = self._conn.execute(
            f"SELECT {_MODEL_COLUMNS} FROM models WHERE strategy = ? AND stage = 'PRODUCTION'",
            (strategy,),
        ).fetchone()
        return None if row is None else _model(row)

    def list(self, strategy: str | None = None) -> list[ModelVersion]:
        """Every version, by strategy then version."""
        query = f"SELECT {_MODEL_COLUMNS} FROM models"
        args: tuple = ()
        if strategy is not None:
            query += " WHERE strategy = ?"
            args = (strategy,)
        rows = self._conn.execute(query + " ORDER BY strategy, version", args).fetchall()
        return [_model(r) for r in rows]

    def _set_stage(self, model_id: str, stage: ModelStage, session: str, reason: str) -> None:
        self._conn.execute(
            "UPDATE models SET stage = ? WHERE model_id = ?", (stage.value, model_id)
        )
        event = "MODEL_PROMOTED" if stage is ModelStage.PRODUCTION else f"MODEL_{stage.value}"
        self._audit.append(event, "learn", session, {"model_id": model_id, "reason": reason})

    def archive(self, model_id: str, session: str, reason: str) -> None:
        """Retire a version for good."""
        self._set_stage(model_id, ModelStage.ARCHIVED, session, reason)

    def promote(self, candidate_id: str, run_id: int, session: str) -> ModelVersion:
        """Candidate -> PRODUCTION, old production -> ARCHIVED; only after a passed shadow run."""
        try:
            run = self.shadow_run(run_id)
        except KeyError:
            raise PromotionRefusedError(f"no shadow run {run_id} for {candidate_id}") from None
        candidate = self.get(candidate_id)
        if run.candidate_id != candidate_id:
            raise PromotionRefusedError(f"shadow run {run_id} did not test {candidate_id}")
        if run.status != "COMPLETED" or not run.passed:
            raise PromotionRefusedError(
                f"{candidate_id} has no completed, passed shadow run (run {run_id}: "
                f"{run.status}, passed={run.passed})"
            )
        if candidate.stage is not ModelStage.STAGING:
            raise PromotionRefusedError(f"{candidate_id} is {candidate.stage}, not STAGING")
        current = self.production(candidate.strategy)
        if current is None or current.model_id != run.production_id:
            raise PromotionRefusedError(
                f"production of {candidate.strategy} changed since shadow run {run_id} began"
            )
        self._set_stage(
            current.model_id, ModelStage.ARCHIVED, session, f"replaced by {candidate_id}"
        )
        self._set_stage(candidate_id, ModelStage.PRODUCTION, session, f"shadow run {run_id} passed")
        return self.get(candidate_id)

    # ----- shadow runs -------------------------------------------------------------
    def start_shadow(self, candidate_id: str, session: str) -> ShadowRun:
        """Open a shadow run of a STAGING candidate against the current production."""
        candidate = self.get(candidate_id)
        production = self.production(candidate.strategy)
        if production is None:
            raise PromotionRefusedError(f"{candidate.strategy} has no production model to shadow")
        cursor = self._conn.execute(
            "INSERT INTO shadow_runs (strategy, candidate_id, production_id, start_session, status)"
            " VALUES (?, ?, ?, ?, 'RUNNING')",
            (candidate.strategy, candidate_id, production.model_id, session),
        )
        self._audit.append(
            "SHADOW_STARTED",
            "learn",
            session,
            {
                "run_id": cursor.lastrowid,
                "candidate": candidate_id,
                "production": production.model_id,
            },
        )
        return self.shadow_run(int(cursor.lastrowid))

    def shadow_run(self, run_id: int) -> ShadowRun:
        """A shadow run by id."""
        row = self._conn.execute(
            f"SELECT {_SHADOW_COLUMNS} FROM shadow_runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise KeyError(f"no shadow run {run_id}")
        return _shadow(row)

    def running_shadows(self) -> list[ShadowRun]:
        """Shadow runs still collecting returns."""
        rows = self._conn.execute(
            f"SELECT {_SHADOW_COLUMNS} FROM shadow_runs WHERE status = 'RUNNING' ORDER BY run_id"
        ).fetchall()
        return [_shadow(r) for r in rows]

    def record_shadow_return(
        self, run_id: int, session: str, candidate: float, production: float
    ) -> None:
        """One paired daily return; a repeat of the same session is ignored."""
        cursor = self._conn.execute(
            "INSERT OR IGNORE INTO shadow_returns (run_id, session, candidate, production) "
            "VALUES (?, ?, ?, ?)",
            (run_id, session, candidate, production),
        )
        if cursor.rowcount:
            self._conn.execute(
                "UPDATE shadow_runs SET sessions = sessions + 1 WHERE run_id = ?", (run_id,)
            )

    def shadow_returns(self, run_id: int) -> tuple[list[float], list[float]]:
        """Paired (candidate, production) daily returns of a run, in session order."""
        rows = self._conn.execute(
            "SELECT candidate, production FROM shadow_returns WHERE run_id = ? ORDER BY session",
            (run_id,),
        ).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def complete_shadow(
        self,
        run_id: int,
        session: str,
        candidate_sharpe: float,
        production_sharpe: float,
        p_value: float,
        passed: bool,
    ) -> ShadowRun:
        """Close a run with its verdict; audited SHADOW_PASSED or SHADOW_FAILED."""
        self._conn.execute(
            "UPDATE shadow_runs SET status = 'COMPLETED', end_session = ?, candidate_sharpe = ?, "
            "production_sharpe = ?, p_value = ?, passed = ? WHERE run_id = ?",
            (session, candidate_sharpe, production_sharpe, p_value, int(passed), run_id),
        )
        self._audit.append(
            "SHADOW_PASSED" if passed else "SHADOW_FAILED",
            "learn",
            session,
            {
                "run_id": run_id,
                "candidate_sharpe": candidate_sharpe,
                "production_sharpe": production_sharpe,
                "p_value": p_value,
            },
        )
        return self.shadow_run(run_id)
