"""Headless engine: `qgtm --daemon` runs the same TradingEngine with logs to stdout."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from qgtm.core.config import Config
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.live.lock import EngineLock

log = logging.getLogger(__name__)


async def run_daemon(config: Config, data_dir: Path, max_sessions: int | None = None) -> int:
    """Run until SIGINT/SIGTERM, end of data or `max_sessions`; returns sessions processed."""
    with EngineLock(data_dir):
        engine = TradingEngine(config, data_dir)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, engine.request_stop)
        log.info(
            "event=daemon_start data_dir=%s mode=%s source=%s next_session=%s",
            data_dir,
            config.mode.value,
            config.source.value,
            None if engine.at_end else engine.panel.dates[engine.next_index],
        )
        try:
            done = await engine.run(max_sessions)
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
