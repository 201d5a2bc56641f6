"""Prometheus metrics of the daemon (prometheus-client), off by default, loopback by default.

Served by prometheus-client's own HTTP server on `[live] metrics_host:metrics_port`
from a private registry, refreshed once a second by the daemon's metrics task.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from qgtm.core.config import LiveConfig
from qgtm.engine.live.recon import DiscrepancyKind, ReconciliationEngine
from qgtm.engine.state import STATE_DB

if TYPE_CHECKING:
    from qgtm.engine.live.engine import TradingEngine


class MetricsSource(Protocol):
    """What the gauges read: the daemon (`TradingDaemon` is one). Stated here so the
    metrics do not import the daemon that starts them."""

    live: LiveConfig
    data_dir: Path
    engine: TradingEngine
    recon: ReconciliationEngine
    restarts: dict[str, int]

    def heartbeat_age(self) -> float: ...

    def task_status(self) -> dict[str, str]: ...


class DaemonMetrics:
    """Gauges for equity, P&L, kill tier, orders, fills, recon, heartbeat and task health."""

    def __init__(self, daemon: MetricsSource) -> None:
        self.daemon = daemon
        self.registry = CollectorRegistry()
        r = self.registry
        self.equity = Gauge("qgtm_equity", "Book equity at the last mark", registry=r)
        self.daily_pnl = Gauge("qgtm_daily_pnl", "P&L of the last session", registry=r)
        self.total_pnl = Gauge("qgtm_total_pnl", "P&L since inception", registry=r)
        self.drawdown = Gauge("qgtm_drawdown", "Drawdown from peak equity (fraction)", registry=r)
        self.kill_tier = Gauge(
            "qgtm_kill_tier", "Kill-switch tier (0 NORMAL .. 4 FLATTEN)", registry=r
        )
        self.orders = Gauge("qgtm_orders", "Orders recorded, by status", ["status"], registry=r)
        self.fills = Gauge("qgtm_fills", "Fills recorded", registry=r)
        self.recon = Gauge(
            "qgtm_recon_discrepancies",
            "Discrepancies in the last recon, by kind",
            ["kind"],
            registry=r,
        )
        self.recon_runs = Gauge("qgtm_recon_runs", "Reconciliation runs so far", registry=r)
        self.heartbeat_age = Gauge(
            "qgtm_heartbeat_age_seconds", "Seconds since the daemon's last heartbeat", registry=r
        )
        self.task_up = Gauge(
            "qgtm_task_up", "1 if the supervised task is running", ["task"], registry=r
        )
        self.task_restarts = Gauge(
            "qgtm_task_restarts", "Restarts of each supervised task", ["task"], registry=r
        )
        self._server: Any = None
        self._conn: sqlite3.Connection | None = None

    def start(self) -> tuple[str, int]:
        """Serve /metrics on the configured host and port; returns the bound address."""
        live = self.daemon.live
        server, _thread = start_http_server(
            live.metrics_port, addr=live.metrics_host, registry=self.registry
        )
        self._server = server
        host, port = server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        """Shut the HTTP server down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def update(self) -> None:
        """Refresh every gauge from the engine's snapshot, the store and the supervisor."""
        daemon = self.daemon
        snap = daemon.engine.snapshot()
        self.equity.set(snap.equity)
        self.daily_pnl.set(snap.daily_pnl)
        self.total_pnl.set(snap.total_pnl)
        self.drawdown.set(snap.drawdown)
        self.kill_tier.set(int(snap.kill_tier))
        if self._conn is None:
            uri = f"file:{daemon.data_dir / STATE_DB}?mode=ro"
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        for status, count in self._conn.execute(
            "SELECT status, count(*) FROM orders GROUP BY status"
        ):
            self.orders.labels(status=status).set(count)
        self.fills.set(self._conn.execute("SELECT count(*) FROM fills").fetchone()[0])
        last = daemon.recon.last
        for kind in DiscrepancyKind:
            self.recon.labels(kind=kind.value).set(last.count(kind) if last else 0)
        self.recon_runs.set(daemon.recon.runs)
        self.heartbeat_age.set(daemon.heartbeat_age())
        for name, health in daemon.task_status().items():
            self.task_up.labels(task=name).set(1 if health == "RUNNING" else 0)
            self.task_restarts.labels(task=name).set(daemon.restarts.get(name, 0))
