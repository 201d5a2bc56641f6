"""The Prometheus endpoint: off by default, on loopback when enabled, real scrape."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from qgtm.core.config import Config, LiveConfig
from qgtm.engine.live.daemon import TradingDaemon
from qgtm.engine.live.engine import TradingEngine


def test_metrics_are_off_and_loopback_by_default():
    live = Config().live
    assert live.metrics is False and live.metrics_host == "127.0.0.1"


async def test_scraping_the_daemon_metrics_on_loopback(short_config: Config, tmp_path: Path):
    config = replace(
        short_config,
        live=LiveConfig(metrics=True, metrics_port=0, watchdog=False, heartbeat_interval_s=0.05),
    )
    engine = TradingEngine(config, tmp_path)
    daemon = TradingDaemon(config, tmp_path, engine, max_sessions=30, control_socket=False)
    engine.set_speed(2.0)  # slow enough to scrape while it runs
    task = asyncio.create_task(daemon.run())
    for _ in range(200):
        if daemon.metrics_address is not None and daemon.sessions_done >= 2:
            break
        await asyncio.sleep(0.05)
    host, port = daemon.metrics_address
    assert host == "127.0.0.1"
    await asyncio.sleep(1.1)  # one metrics refresh after the sessions
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(f"http://{host}:{port}/metrics")
    assert response.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    snap = engine.snapshot()
    assert abs(samples[("qgtm_equity", ())] - snap.equity) < snap.equity * 0.05
    assert samples[("qgtm_kill_tier", ())] == int(snap.kill_tier)
    assert samples[("qgtm_fills", ())] >= 0
    assert samples[("qgtm_recon_runs", ())] > 0
    assert ("qgtm_recon_discrepancies", (("kind", "QTY_MISMATCH"),)) in samples
    assert samples[("qgtm_task_up", (("task", "clock"),))] == 1
    assert samples[("qgtm_task_up", (("task", "heartbeat"),))] == 1
    assert 0 <= samples[("qgtm_heartbeat_age_seconds", ())] < 5
    assert any(name == "qgtm_orders" for name, _ in samples)
    daemon.stop()
    await task
    engine.close()
