"""The self-learning loop, run at every session close inside the session's transaction.

decay monitor -> RETRAIN_TRIGGERED -> retrain in a background process -> validation gates
-> RETRAIN_FAILED | MODEL_STAGED -> shadow run for `shadow_sessions` -> SHADOW_FAILED
(candidate ARCHIVED) | SHADOW_PASSED -> MODEL_PROMOTED (old ARCHIVED). Nothing promotes
without a completed shadow run: `ModelRegistry.promote` refuses otherwise.

A triggered retrain is applied at the next session close (waiting for it if needed), so a
replay is deterministic and a restart resumes pending jobs from the `learn_jobs` table.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import sqlite3
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor

import numpy as np

from qgtm.core.config import LearnConfig
from qgtm.core.processes import ctrl_c_left_to_parent
from qgtm.core.results import LearnStatus
from qgtm.engine.audit import AuditLog
from qgtm.engine.data.store import PricePanel
from qgtm.engine.features.auxiliary import StrategyContext
from qgtm.engine.learn.decay import DecayReport, DecayStatus, assess, factor_returns
from qgtm.engine.learn.registry import ModelRegistry, ModelStage
from qgtm.engine.learn.retrain import RetrainResult, Validator, retrain, unit_gross_weights
from qgtm.engine.learn.shadow import judge
from qgtm.engine.state_schema import migrate
from qgtm.engine.strategies.base import BaseStrategy
from qgtm.engine.strategies.registry import create

log = logging.getLogger(__name__)

FACTOR_WARMUP = 253


def _run_retrain(
    name: str,
    params: dict[str, float],
    panel: PricePanel,
    index: int,
    config: LearnConfig,
    validator: Validator,
    context: StrategyContext | None = None,
) -> RetrainResult:
    return retrain(name, params, panel, index, config, validator, context)


class LearningLoop:
    """Owns decay history, retrain jobs and shadow runs; the engine calls `on_close`."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        audit: AuditLog,
        registry: ModelRegistry,
        panel: PricePanel,
        config: LearnConfig,
        validator: Validator,
        alert: Callable[[str], None],
        executor: Executor | None = None,
        inputs: Callable[[], StrategyContext | None] | None = None,
    ) -> None:
        # `inputs`: the strategies' macro/COT context (the engine's ContextCache.get);
        # None: retrains and shadow runs use the demo fallback series
        self._inputs = inputs or (lambda: None)
        self._conn = conn
        self._audit = audit
        self.registry = registry
        self.panel = panel
        self.config = config
        self.validator = validator
        self._alert = alert
        self._executor = executor
        self._jobs: dict[str, Future[RetrainResult]] = {}
        migrate(conn)  # tables: state_schema

    # ----- set-up --------------------------------------------------------------------
    def bootstrap(self, strategies: list[BaseStrategy], session: str) -> list[BaseStrategy]:
        """Register a first PRODUCTION version per strategy; return them at production params."""
        out = []
        for strategy in strategies:
            model = self.registry.production(strategy.name)
            if model is None:
                model = self.registry.register(
                    strategy.name, dict(strategy.params), ModelStage.PRODUCTION, session
                )
            out.append(create(strategy.name, **model.params))
        if not self._jobs:
            self._resume_jobs()
        return out

    def _executor_or_default(self) -> Executor:
        if self._executor is None:
            # spawn, not fork: the engine's process runs threads (the step loop, the
            # terminal), and a forked child may inherit a lock another thread held
            self._executor = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._executor

    def _resume_jobs(self) -> None:
        rows = self._conn.execute(
            "SELECT strategy, session_index, params FROM learn_jobs WHERE status = 'PENDING'"
        ).fetchall()
        for strategy, index, params in rows:
            self._submit(strategy, json.loads(params), index)

    def _submit(self, strategy: str, params: dict[str, float], index: int) -> None:
        # the first submit starts the worker: Ctrl+C on a foreground daemon then stops
        # the daemon cleanly instead of also printing the idle worker's traceback
        with ctrl_c_left_to_parent():
            self._jobs[strategy] = self._executor_or_default().submit(
                _run_retrain,
                strategy,
                params,
                self.panel,
                index,
                self.config,
                self.validator,
                self._inputs(),
            )

    def resync(self) -> None:
        """After a rolled-back session: forget in-memory jobs, resume what the store holds."""
        for job in self._jobs.values():
            job.cancel()
        self._jobs.clear()
        self._resume_jobs()

    def shutdown(self) -> None:
        """Stop the background worker (pending jobs resume after a restart)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # ----- per session -----------------------------------------------------------------
    def on_close(self, index: int, strategies: list[BaseStrategy]) -> list[BaseStrategy]:
        """Record, assess, apply finished work; returns the strategies to trade next."""
        if not self.config.enabled or index < 1:
            return strategies
        session = self.panel.dates[index].isoformat()
        self._record_returns(index, strategies)
        strategies = self._advance_shadows(index, strategies)
        self._apply_jobs(index, session)
        self._assess(index, strategies, session)
        return strategies

    def _record_returns(self, index: int, strategies: list[BaseStrategy]) -> None:
        """Returns of each strategy's signals decided at index-1, held close index-1 -> index."""
        decided = self.panel.dates[index - 1].isoformat()
        moves = self.panel.close[index] / self.panel.close[index - 1] - 1.0
        position = {s: i for i, s in enumerate(self.panel.symbols)}
        for strategy in strategies:
            rows = self._conn.execute(
                "SELECT symbol, side, weight FROM signals WHERE strategy = ? AND as_of = ?",
                (strategy.name, decided),
            ).fetchall()
            if not rows:
                continue
            weights = np.zeros(len(self.panel.symbols))
            for symbol, side, weight in rows:
                sign = {"LONG": 1.0, "SHORT": -1.0}.get(side, 0.0)
                weights[position[symbol]] += sign * weight
            gross = np.abs(weights).sum()
            ret = float(np.sum(weights / gross * moves)) if gross > 0 else 0.0
            self._conn.execute(
                "INSERT OR IGNORE INTO strategy_returns (strategy, session, ret) VALUES (?, ?, ?)",
                (strategy.name, decided, ret),
            )

    def _returns(self, strategy: str, limit: int) -> np.ndarray:
        rows = self._conn.execute(
            "SELECT ret FROM strategy_returns WHERE strategy = ? ORDER BY session DESC LIMIT ?",
            (strategy, limit),
        ).fetchall()
        return np.array([r[0] for r in reversed(rows)])

    def _factors(self, index: int, length: int) -> dict[str, np.ndarray]:
        start = max(0, index - length - FACTOR_WARMUP)
        factors = factor_returns(self.panel.close[start : index + 1])
        return {k: v[-length:] for k, v in factors.items()}

    def _assess(self, index: int, strategies: list[BaseStrategy], session: str) -> None:
        for strategy in strategies:
            returns = self._returns(strategy.name, self.config.window)
            if len(returns) == 0:
                continue
            factors = self._factors(index - 1, len(returns))
            report = assess(
                strategy.name, returns, dict(strategy.factor_exposures), factors, self.config
            )
            self._store(report, session)
            if report.status is not DecayStatus.HEALTHY and self._may_retrain(strategy.name, index):
                self._trigger(strategy, report, index, session)

    def _store(self, report: DecayReport, session: str) -> None:
        self._conn.execute(
            "INSERT OR REPLACE INTO decay_history (strategy, session, status, sharpe, hit_rate, "
            "drift, reasons) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                report.strategy,
                session,
                report.status.value,
                report.rolling_sharpe,
                report.hit_rate,
                report.exposure_drift,
                "; ".join(report.reasons),
            ),
        )

    def _may_retrain(self, strategy: str, index: int) -> bool:
        if strategy in self._jobs:
            return False
        if any(run.strategy == strategy for run in self.registry.running_shadows()):
            return False
        last = self._conn.execute(
            "SELECT max(session_index) FROM learn_jobs WHERE strategy = ?", (strategy,)
        ).fetchone()[0]
        return last is None or index - last >= self.config.cooldown_sessions

    def _trigger(
        self, strategy: BaseStrategy, report: DecayReport, index: int, session: str
    ) -> None:
        params = dict(strategy.params)
        self._conn.execute(
            "INSERT INTO learn_jobs (strategy, triggered_session, session_index, params, status) "
            "VALUES (?, ?, ?, ?, 'PENDING')",
            (strategy.name, session, index, json.dumps(params, sort_keys=True)),
        )
        self._audit.append(
            "RETRAIN_TRIGGERED",
            "learn",
            session,
            {"strategy": strategy.name, "status": report.status.value, "reasons": report.reasons},
        )
        self._alert(f"{session} {strategy.name} {report.status.value}: retrain triggered")
        self._submit(strategy.name, params, index)

    def _apply_jobs(self, index: int, session: str) -> None:
        for strategy in sorted(self._jobs):
            result = self._jobs.pop(strategy).result()  # waits: keeps the replay deterministic
            self._conn.execute(
                "UPDATE learn_jobs SET status = 'DONE' WHERE strategy = ? AND status = 'PENDING'",
                (strategy,),
            )
            if not result.passed:
                self._audit.append(
                    "RETRAIN_FAILED",
                    "learn",
                    session,
                    {"strategy": strategy, "reason": result.reason, "metrics": result.metrics},
                )
                self._alert(f"{session} {strategy} retrain failed: {result.reason}")
                continue
            model = self.registry.register(
                strategy,
                result.params,
                ModelStage.STAGING,
                session,
                train_window=(result.train_start, result.train_end),
                metrics=result.metrics,
                data_hash=result.data_hash,
            )
            self.registry.start_shadow(model.model_id, session)

    def _advance_shadows(self, index: int, strategies: list[BaseStrategy]) -> list[BaseStrategy]:
        session = self.panel.dates[index].isoformat()
        decided = index - 1
        history = self.panel.history_before(decided)
        moves = self.panel.close[index] / self.panel.close[decided] - 1.0
        for run in self.registry.running_shadows():
            if run.start_session >= self.panel.dates[decided].isoformat():
                continue  # the first paired day is decided after the run starts
            candidate = create(run.strategy, **self.registry.get(run.candidate_id).params)
            production = create(run.strategy, **self.registry.get(run.production_id).params)
            day = self.panel.dates[decided]
            context = self._inputs()
            cand = float(np.sum(unit_gross_weights(candidate, history, day, context) * moves))
            prod = float(np.sum(unit_gross_weights(production, history, day, context) * moves))
            self.registry.record_shadow_return(run.run_id, day.isoformat(), cand, prod)
            if run.sessions + 1 >= self.config.shadow_sessions:
                strategies = self._finish_shadow(run.run_id, session, strategies)
        return strategies

    def _finish_shadow(
        self, run_id: int, session: str, strategies: list[BaseStrategy]
    ) -> list[BaseStrategy]:
        cand, prod = self.registry.shadow_returns(run_id)
        verdict = judge(np.array(cand), np.array(prod), self.config.promotion_p_value)
        run = self.registry.complete_shadow(
            run_id,
            session,
            verdict.candidate_sharpe,
            verdict.production_sharpe,
            verdict.p_value,
            verdict.passed,
        )
        if not verdict.passed:
            self.registry.archive(run.candidate_id, session, "shadow failed")
            self._alert(
                f"{session} {run.strategy} shadow failed (p={verdict.p_value:.3f}); "
                "candidate discarded"
            )
            return strategies
        promoted = self.registry.promote(run.candidate_id, run_id, session)
        self._alert(f"{session} {run.strategy} promoted {promoted.model_id} to production")
        return [
            create(s.name, **promoted.params) if s.name == promoted.strategy else s
            for s in strategies
        ]

    # ----- for the terminal ---------------------------------------------------------------
    def status(self) -> list[LearnStatus]:
        """Latest decay status, production version, pending job and shadow per strategy."""
        rows = self._conn.execute(
            "SELECT d.strategy, d.status, d.sharpe, d.hit_rate, d.drift FROM decay_history d "
            "JOIN (SELECT strategy, max(session) AS s FROM decay_history GROUP BY strategy) m "
            "ON d.strategy = m.strategy AND d.session = m.s ORDER BY d.strategy"
        ).fetchall()
        shadows = {r.strategy: r for r in self.registry.running_shadows()}
        out = []
        for strategy, status, sharpe, hit, drift in rows:
            production = self.registry.production(strategy)
            shadow = shadows.get(strategy)
            out.append(
                LearnStatus(
                    strategy=strategy,
                    production=None if production is None else production.model_id,
                    status=status,
                    sharpe=sharpe,
                    hit_rate=hit,
                    drift=drift,
                    job="retraining" if strategy in self._jobs else None,
                    shadow=None
                    if shadow is None
                    else f"{shadow.candidate_id} {shadow.sessions}/{self.config.shadow_sessions}",
                )
            )
        return out

    def decay_history(self, strategy: str, limit: int = 500) -> list[tuple[str, str, float]]:
        """(session, status, rolling Sharpe) of a strategy, oldest first, for charts."""
        rows = self._conn.execute(
            "SELECT session, status, sharpe FROM decay_history WHERE strategy = ? "
            "ORDER BY session DESC LIMIT ?",
            (strategy, limit),
        ).fetchall()
        return list(reversed(rows))
