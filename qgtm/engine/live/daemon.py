"""Headless engine: `qgtm --daemon` supervises the engine's asyncio tasks.

Tasks: clock (the replay clock firing the scheduled jobs in demo mode; the wall clock
with source=alpaca, see `scheduler.WallClock`), heartbeat, audit writer, control socket
(attach), OMS events (an external broker's trade updates booked as they arrive), outbox
(the publication sender, when a publisher url is set), metrics (optional) and any extra
hooks. A task that raises is reported (log, owner alert, audit TASK_FAILED) and restarted
with exponential backoff; more than `live.task_max_restarts` failures within
`live.task_window_s` escalate (TASK_ESCALATED, daemon stops). A separate watchdog
thread flattens through the broker when the heartbeat goes stale, even if this loop is
blocked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import hashlib
import json
import logging
import signal
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from qgtm.core import calendar
from qgtm.core.config import Config
from qgtm.core.results import ReconRun
from qgtm.core.snapshot import AuditPage, AuditRow
from qgtm.engine.execution.brokers.base import BrokerError
from qgtm.engine.execution.brokers.paper import PaperBroker
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.live.recon import ReconciliationEngine
from qgtm.engine.live.scheduler import (
    AlgoTrigger,
    Job,
    ReplayClock,
    WallClock,
    build_triggers,
)
from qgtm.engine.live.watchdog import Heartbeat, Watchdog
from qgtm.engine.lock import EngineLock

log = logging.getLogger(__name__)

ACTOR = "daemon"


class TaskHealth(StrEnum):
    """Where a supervised task stands."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    RESTARTING = "RESTARTING"
    DONE = "DONE"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A supervised task: `factory()` returns the coroutine to run (again, after a failure).

    `critical` tasks stop the daemon when they finish normally (the clock at end of data).
    """

    name: str
    factory: Callable[[], Awaitable[Any]]
    critical: bool = False


class TradingDaemon:
    """Supervises the engine's tasks; see the module docstring."""

    def __init__(
        self,
        config: Config,
        data_dir: Path,
        engine: TradingEngine,
        max_sessions: int | None = None,
        extra_tasks: tuple[TaskSpec, ...] = (),
        control_socket: bool = True,
        watchdog: bool | None = None,
        oms_poll_s: float = 0.5,
    ) -> None:
        self.config = config
        self.live = config.live
        self.data_dir = data_dir
        self.engine = engine
        self.max_sessions = max_sessions
        self.sessions_done = 0
        self.started_at = datetime.now(UTC)  # the attach hello shows it
        self._summarised: date | None = None  # the last session log_session_summary logged
        self.health: dict[str, TaskHealth] = {}
        self.restarts: dict[str, int] = {}
        self.failures: dict[str, str] = {}
        self.recon = ReconciliationEngine(self.live)  # it raises its alerts on the engine
        self.heartbeat = Heartbeat(data_dir)
        self.last_beat: float | None = None
        self.audit_queue: asyncio.Queue[tuple[str, str, dict[str, Any]]] = asyncio.Queue()
        self.clock: ReplayClock | WallClock | None = None
        self.oms_poll_s = oms_poll_s
        self.oms_events = 0  # venue updates booked by the OMS-events task
        self.control: Any = None
        self.metrics: Any = None
        self.metrics_address: tuple[str, int] | None = None
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        use_watchdog = self.live.watchdog if watchdog is None else watchdog
        self.watchdog: Watchdog | None = (
            Watchdog(data_dir, self.live.watchdog_timeout_s, self._on_stall)
            if use_watchdog
            else None
        )
        self.specs: list[TaskSpec] = [
            TaskSpec("clock", self._run_clock, critical=True),
            TaskSpec("heartbeat", self._run_heartbeat),
            TaskSpec("audit", self._run_audit_writer),
        ]
        if not isinstance(engine.broker, PaperBroker):
            self.specs.append(TaskSpec("oms_events", self._run_oms_events))
        sender = engine.make_sender()
        if sender is not None:
            self.specs.append(TaskSpec("outbox", lambda: self._run_outbox(sender)))
        if control_socket:
            self.specs.append(TaskSpec("control", self._run_control))
        if self.live.metrics:
            self.specs.append(TaskSpec("metrics", self._run_metrics))
        self.specs.extend(extra_tasks)
        install_live_commands(engine, self.recon)

    # ----- lifecycle ---------------------------------------------------------------
    async def run(self) -> int:
        """Run every task until stopped or the clock finishes; returns sessions processed."""
        self._record_config()
        self.last_beat = self.heartbeat.beat()
        if self.watchdog is not None:
            self.watchdog.start()
        self._tasks = [
            asyncio.create_task(self._supervise(spec), name=f"qgtm-{spec.name}")
            for spec in self.specs
        ]
        try:
            await self._stopping.wait()
        finally:
            if self.watchdog is not None:
                self.watchdog.stop()
            self.engine.request_stop()
            if self.clock is not None:
                self.clock.stop()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._drain_audit()
            self.heartbeat.close()
            if self.metrics is not None:
                self.metrics.stop()
        return self.sessions_done

    def stop(self) -> None:
        """Stop every task (safe from signal handlers)."""
        self.engine.request_stop()
        if self.clock is not None:
            self.clock.stop()
        self._stopping.set()

    async def _supervise(self, spec: TaskSpec) -> None:
        failures: deque[float] = deque()
        self.restarts.setdefault(spec.name, 0)
        while not self._stopping.is_set():
            self.health[spec.name] = TaskHealth.RUNNING
            try:
                await spec.factory()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                now = time.monotonic()
                failures.append(now)
                while failures and now - failures[0] > self.live.task_window_s:
                    failures.popleft()
                self.failures[spec.name] = repr(exc)
                log.exception("event=TASK_FAILED task=%s error=%r", spec.name, exc)
                if len(failures) > self.live.task_max_restarts:
                    self.health[spec.name] = TaskHealth.FAILED
                    message = (
                        f"task {spec.name} failed {len(failures)} times in "
                        f"{self.live.task_window_s:.0f}s: escalating, daemon stops ({exc!r})"
                    )
                    self._owner_alert(message)
                    await self._audit_now("TASK_ESCALATED", {"task": spec.name, "error": repr(exc)})
                    log.critical("event=TASK_ESCALATED task=%s", spec.name)
                    self.stop()
                    return
                self.restarts[spec.name] += 1
                self.health[spec.name] = TaskHealth.RESTARTING
                delay = min(self.live.task_backoff_s * 2 ** (len(failures) - 1), 60.0)
                self._owner_alert(f"task {spec.name} failed ({exc!r}); restart in {delay:.1f}s")
                self.audit_queue.put_nowait(
                    (
                        "TASK_FAILED",
                        ACTOR,
                        {"task": spec.name, "error": repr(exc), "restart_in_s": delay},
                    )
                )
                await asyncio.sleep(delay)
                continue
            self.health[spec.name] = TaskHealth.DONE
            if spec.critical:
                log.info("event=task_done task=%s stopping=1", spec.name)
                self.stop()
            return

    def _owner_alert(self, message: str) -> None:
        self.engine.alert(message, source="daemon")
        log.error("event=owner_alert message=%r", message)

    # ----- clock and jobs ----------------------------------------------------------
    def jobs(self, start: datetime) -> list[Job]:
        """The daemon's job definitions (same for the wall clock and the replay clock)."""
        triggers = build_triggers(self.live, start)
        jobs = [
            Job("rebalance", triggers["rebalance"], self._job_rebalance),
            Job("recon", triggers["recon"], self._job_recon, market_hours=True),
            Job("data_refresh", triggers["data_refresh"], self._job_data_refresh),
        ]
        if self.engine.wall_clock and self.engine.oms.slices:
            jobs.append(Job("algo", AlgoTrigger(self.engine.oms.next_wakeup), self._job_algo))
        return jobs

    async def _run_clock(self) -> None:
        engine = self.engine
        if engine.wall_clock:
            wall = WallClock(self.jobs(engine.clock.now()), engine.clock)
            self.clock = wall
            await wall.run()
            return
        if engine.at_end:
            log.info("event=replay_finished session=%s", engine.current_session)
            return
        start = calendar.session_open(engine.panel.dates[engine.next_index])
        end = calendar.session_close(engine.panel.dates[-1])
        self.clock = ReplayClock(self.jobs(start), start, end, pace=self._pace)
        await self.clock.run()

    async def _pace(self, job: Job, at: datetime) -> None:
        """Replay speed and pause apply between sessions (before each rebalance)."""
        if job.name != "rebalance":
            return
        engine = self.engine
        while not engine._stop.is_set() and not engine.running:
            engine._wake.clear()
            await engine._wake.wait()
        if not engine._stop.is_set():
            await engine._sleep_interval()
        if engine._stop.is_set() and self.clock is not None:
            self.clock.stop()

    async def _job_rebalance(self, at: datetime) -> None:
        engine = self.engine
        if engine.wall_clock:
            await self._rebalance_wall_clock(at)
            return
        if engine.at_end or engine.panel.dates[engine.next_index] > at.date():
            return
        while not engine.at_end and engine.panel.dates[engine.next_index] <= at.date():
            if not await asyncio.to_thread(engine.step):
                break
            self.sessions_done += 1
            await asyncio.to_thread(self.log_session_summary)
        if engine.at_end:
            engine.alerts.appendleft("end of stored history: replay finished")
        done = self.max_sessions is not None and self.sessions_done >= self.max_sessions
        if (engine.at_end or done) and self.clock is not None:
            self.clock.stop()

    async def _rebalance_wall_clock(self, at: datetime) -> None:
        """15:30 on the wall clock: make sure yesterday's bar is in, then decide once."""
        engine = self.engine
        if engine._decision_refusal(at.astimezone(calendar.NEW_YORK).date(), at).startswith(
            "bars stop"
        ):
            await asyncio.to_thread(engine.refresh_data)  # the 18:00 refresh missed a bar
        placed = await asyncio.to_thread(engine.decide_live, at)
        if placed >= 0:
            self.sessions_done += 1
            await asyncio.to_thread(self.log_session_summary)
        done = self.max_sessions is not None and self.sessions_done >= self.max_sessions
        if done and self.clock is not None:
            self.clock.stop()

    def log_session_summary(self) -> None:
        """One structured line per processed session: `event=session_summary session=...
        equity=... daily_pnl=... orders=... fills=... kill_tier=...` (orders decided on
        the session, fills booked on its day), once per session whose close is booked."""
        engine = self.engine
        with engine._step_lock:
            snap = engine.snapshot()
            if snap.session is None or snap.session == self._summarised:
                return  # nothing closed since the last line (wall clock: the bar is late)
            self._summarised = snap.session
            day = snap.session.isoformat()
            orders = engine.state.conn.execute(
                "SELECT count(*) FROM orders WHERE decision_date = ?", (day,)
            ).fetchone()[0]
            fills = engine.state.conn.execute(
                "SELECT count(*) FROM fills WHERE substr(filled_at, 1, 10) = ?", (day,)
            ).fetchone()[0]
        log.info(
            "event=session_summary session=%s equity=%.2f daily_pnl=%.2f orders=%d fills=%d "
            "kill_tier=%s",
            day,
            snap.equity,
            snap.daily_pnl,
            orders,
            fills,
            snap.kill_tier.name,
        )

    async def _job_algo(self, at: datetime) -> None:
        """Release due children of sliced VWAP/TWAP parents; close ended windows."""
        await asyncio.to_thread(self.engine.work_algos, at)

    async def _job_recon(self, at: datetime) -> None:
        if isinstance(self.engine.broker, PaperBroker):
            self._recon_now(at)  # in memory: cheaper than a thread hop every minute
        else:
            await asyncio.to_thread(self._recon_now, at)  # REST calls: off the loop

    def _recon_now(self, at: datetime) -> None:
        engine = self.engine
        lock = engine._step_lock
        # Replay: a step in progress means the next minute's recon will do. Wall clock
        # (in a thread): wait for the short OMS/refresh holders instead of skipping.
        acquired = lock.acquire(timeout=30.0) if engine.wall_clock else lock.acquire(False)
        if not acquired:
            log.debug("event=recon_skipped reason=engine_busy at=%s", at)
            return
        try:
            if engine.wall_clock:
                # Book what the venue streamed first; while orders are still working the
                # broker's positions run ahead of the stream, so comparing then would
                # "adjust" the book by a fill that is about to be booked.
                today = at.astimezone(calendar.NEW_YORK).date()
                with engine.state.transaction():
                    engine.oms.process_updates(at)
                    if any(o.decision_date < today for o in engine.state.open_orders()):
                        engine.oms.recover(at)  # the stream missed an end of day: ask
                working = sum(o.decision_date >= today for o in engine.state.open_orders())
                if working:
                    log.debug("event=recon_deferred working_orders=%d at=%s", working, at)
                    return
            self.recon.run(engine, at)
        finally:
            lock.release()

    async def _job_data_refresh(self, at: datetime) -> None:
        """Cron: incremental refresh of the configured sources, off the loop, under the
        step lock (`engine.refresh_data`); the demo market alone needs none."""
        sources = self.engine.refresh_sources()
        if not sources:
            log.debug("event=data_refresh_skipped at=%s source=demo", at)
            return
        lines = await asyncio.to_thread(self.engine.refresh_data, sources)
        log.info("event=data_refresh at=%s sources=%s result=%r", at, ",".join(sources), lines)
        await asyncio.to_thread(self.log_session_summary)  # a close the new bar booked

    # ----- OMS events, outbox ------------------------------------------------------
    async def _run_oms_events(self) -> None:
        """Book the broker's trade updates as they arrive (fills, cancels, rejects)."""
        engine = self.engine
        broker = engine.broker
        wait = getattr(broker, "wait_for_updates", None)
        while True:
            if callable(wait):
                await asyncio.to_thread(wait, 1, self.oms_poll_s)
            else:
                await asyncio.sleep(self.oms_poll_s)
            _check_stream(broker)
            self.oms_events += await asyncio.to_thread(engine.process_broker_updates)

    async def _run_outbox(self, sender: Any) -> None:
        """The publication outbox sender, supervised like every other task."""
        await sender.run()

    # ----- heartbeat, watchdog -----------------------------------------------------
    async def _run_heartbeat(self) -> None:
        interval = max(self.live.heartbeat_interval_s, 0.01)
        while True:
            self.last_beat = self.heartbeat.beat()
            await asyncio.sleep(interval)

    def heartbeat_age(self) -> float:
        """Seconds since the last beat this process wrote."""
        return 0.0 if self.last_beat is None else time.time() - self.last_beat

    def _on_stall(self, age: float) -> bool:
        """Watchdog thread: flatten through the broker via the engine's OMS path."""
        lock = self.engine._step_lock
        if not lock.acquire(timeout=5.0):
            log.critical("event=WATCHDOG_WAITING reason=engine_step_in_progress")
            return False
        try:
            reason = f"heartbeat {age:.1f}s old (timeout {self.live.watchdog_timeout_s:.1f}s)"
            sent = self.engine.emergency_flatten(reason, actor="watchdog")
            log.critical("event=WATCHDOG_FLATTEN orders=%d reason=%r", sent, reason)
            return True
        finally:
            lock.release()

    # ----- audit -------------------------------------------------------------------
    async def _run_audit_writer(self) -> None:
        while True:
            event, actor, payload = await self.audit_queue.get()
            await asyncio.to_thread(self._append_audit, event, actor, payload)

    async def _drain_audit(self) -> None:
        while not self.audit_queue.empty():
            event, actor, payload = self.audit_queue.get_nowait()
            await asyncio.to_thread(self._append_audit, event, actor, payload)

    async def _audit_now(self, event: str, payload: dict[str, Any], actor: str = ACTOR) -> None:
        await asyncio.to_thread(self._append_audit, event, actor, payload)

    def _now(self) -> datetime:
        engine = self.engine
        if engine.wall_clock:
            return engine.clock.now()
        return engine.snapshot().sim_time or datetime.now(calendar.NEW_YORK)

    def _append_audit(self, event: str, actor: str, payload: dict[str, Any]) -> None:
        engine = self.engine
        with engine._step_lock, engine.state.transaction():
            at = self._now()
            engine.audit.append(event, actor, at, payload)

    def audit_operator_action(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        """Record who asked for what (the control socket calls this before acting)."""
        self._append_audit("OPERATOR_ACTION", actor, {"action": action, **detail})

    def _record_config(self) -> None:
        """Audit CONFIG_CHANGED when the effective config differs from the last run's."""
        current = json.loads(json.dumps(dataclasses.asdict(self.config), default=str))
        text = json.dumps(current, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()
        state = self.engine.state
        if state.get_meta("config_hash") == digest:
            return
        previous = json.loads(state.get_meta("config_json") or "{}")
        changed = sorted(_diff(previous, current))
        with self.engine._step_lock, state.transaction():
            at = self._now()
            self.engine.audit.append(
                "CONFIG_CHANGED",
                _whoami(),
                at,
                {"changed": changed if previous else ["(first run)"], "hash": digest[:16]},
            )
            state.set_meta("config_hash", digest)
            state.set_meta("config_json", text)

    # ----- control socket, metrics -------------------------------------------------
    async def _run_control(self) -> None:
        from qgtm.engine.live.control import ControlServer

        self.control = ControlServer(self)
        await self.control.serve()

    async def _run_metrics(self) -> None:
        from qgtm.engine.live.metrics import DaemonMetrics

        if self.metrics is None:
            self.metrics = DaemonMetrics(self)
            self.metrics_address = self.metrics.start()
        while True:
            self.metrics.update()
            await asyncio.sleep(1.0)

    def task_status(self) -> dict[str, str]:
        """Health of every supervised task by name."""
        return {name: health.value for name, health in self.health.items()}


def install_live_commands(engine: TradingEngine, recon: ReconciliationEngine) -> None:
    """Expose `recon.run` and `audit.search` to clients (terminal, attach socket)."""

    def run() -> ReconRun:
        result = recon.run(engine)
        return ReconRun(result.broker_positions, result.local_positions, len(result.discrepancies))

    def search(
        event: str | None,
        actor: str | None,
        text: str | None,
        since: str | None,
        until: str | None,
        limit: int,
    ) -> AuditPage:
        records = engine.audit.search(event, actor, text, since, until, int(limit))
        return AuditPage(
            tuple(
                AuditRow(
                    r.seq,
                    r.sim_time,
                    r.event,
                    r.actor,
                    " ".join(f"{k}={v}" for k, v in r.payload.items()),
                )
                for r in records
            )
        )

    for name, handler in (("recon.run", run), ("audit.search", search)):
        if not engine.is_bound(name):  # a second daemon object on the same engine (tests)
            engine.bind(name, handler)


def _check_stream(broker: Any) -> None:
    """An external broker's trade-updates stream thread must be alive (else: task fails)."""
    thread = getattr(broker, "_thread", None)  # AlpacaBroker's stream thread
    if thread is not None and not thread.is_alive():
        raise BrokerError(f"{getattr(broker, 'name', 'broker')}: trade-updates stream stopped")


def _diff(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    keys = set(before) | set(after)
    out: list[str] = []
    for key in keys:
        a, b = before.get(key), after.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_diff(a, b, f"{name}."))
        elif a != b:
            out.append(name)
    return out


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


async def run_daemon(config: Config, data_dir: Path, max_sessions: int | None = None) -> int:
    """Run until SIGINT/SIGTERM, end of data or `max_sessions`; returns sessions processed."""
    with EngineLock(data_dir):
        engine = TradingEngine(config, data_dir)
        daemon = TradingDaemon(config, data_dir, engine, max_sessions)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, daemon.stop)
        log.info(
            "event=daemon_start data_dir=%s mode=%s source=%s next_session=%s",
            data_dir,
            config.mode.value,
            config.source.value,
            None if engine.at_end else engine.panel.dates[engine.next_index],
        )
        done = 0
        try:
            done = await daemon.run()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            snap = engine.snapshot()
            log.info(
                "event=daemon_stop sessions=%d last_session=%s equity=%.2f kill_tier=%s",
                done,
                snap.session,
                snap.equity,
                snap.kill_tier.name,
            )
            engine.close()
        return done
