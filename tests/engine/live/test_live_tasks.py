"""The daemon's live-operation pieces one by one: the data-refresh job, the OMS-events
and outbox tasks under supervision, and who-did-it on the attach socket."""

from __future__ import annotations

import asyncio
import getpass
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from qgtm.core.calendar import NEW_YORK
from qgtm.core.config import Config, LiveConfig, PublishConfig
from qgtm.core.protocol import Request
from qgtm.core.universe import load_universe
from qgtm.engine.live import wire
from qgtm.engine.live.daemon import TaskHealth, TradingDaemon
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.outbox import OutboxSender
from tests.fakes.alpaca import KEY_ID, SECRET, FakeAlpaca
from tests.fakes.alpaca_data import alpaca_data_fake, bar


def _live(config: Config, **live) -> Config:
    base = {"task_backoff_s": 0.01, "heartbeat_interval_s": 0.05, "watchdog": False}
    return replace(config, live=LiveConfig(**{**base, **live}))


async def _until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


# ----- data refresh ---------------------------------------------------------------------
@pytest.fixture
def bad_bars(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """Alpaca bars with a negative close (a critical range failure), served slowly."""
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    served = {
        "GLD": [
            bar("2026-11-18T05:00:00Z", 190.0),
            bar("2026-11-19T05:00:00Z", -1.0),
            bar("2026-11-20T05:00:00Z", 191.0),
        ]
    }
    server = alpaca_data_fake(served, page_size=10)
    inner = server.routes["/v2/stocks/bars"]

    def slow(query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        time.sleep(0.4)  # a slow provider: the event loop must not wait for it
        return inner(query)

    server.routes["/v2/stocks/bars"] = slow
    monkeypatch.setenv("QGTM_ALPACA_DATA_BASE_URL", server.url)
    yield server
    server.close()


async def test_the_data_refresh_job_runs_off_the_loop_under_the_step_lock_and_alerts(
    short_config: Config, tmp_path: Path, bad_bars
):
    config = _live(short_config, refresh_sources=("alpaca",))
    engine = TradingEngine(config, tmp_path)
    daemon = TradingDaemon(config, tmp_path, engine, control_socket=False)
    ticks = 0
    locked_seen = False
    job = asyncio.create_task(daemon._job_data_refresh(datetime.now(NEW_YORK)))
    while not job.done():  # the loop keeps turning while the refresh works
        ticks += 1
        locked_seen = locked_seen or engine._step_lock.locked()
        await asyncio.sleep(0.01)
    await job
    assert ticks >= 20 and locked_seen
    view = engine.snapshot().data_refresh
    assert view is not None and view.state == "OK" and view.sources == ("alpaca",)
    assert view.lines == ("alpaca: 3 rows, 1 critical quality failures",)
    alerts = engine.snapshot().alerts
    assert any("data quality bars_1Day:GLD range" in a for a in alerts)
    owner = engine.state.conn.execute(
        "SELECT payload FROM outbox WHERE kind = 'alert' AND payload LIKE '%range%'"
    ).fetchall()
    assert owner and '"data"' in owner[0][0]  # reached the owner's channel, source "data"
    stored = engine.call("data.failures")
    assert any(f.subject == "GLD" and f.check == "range" for f in stored)
    engine.close()


async def test_the_demo_default_refreshes_nothing(short_config: Config, tmp_path: Path):
    engine = TradingEngine(_live(short_config), tmp_path)
    daemon = TradingDaemon(engine.config, tmp_path, engine, control_socket=False)
    await daemon._job_data_refresh(datetime.now(NEW_YORK))
    assert engine.snapshot().data_refresh is None
    assert "oms_events" not in {s.name for s in daemon.specs}  # paper fills in the step
    engine.close()


# ----- supervised tasks -----------------------------------------------------------------
async def test_a_dead_trade_stream_fails_the_oms_task_visibly_and_escalates(
    short_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    with FakeAlpaca(set(load_universe().symbols)) as fake:
        config = _live(short_config, task_max_restarts=1, recon_interval_s=3600)
        config = replace(
            config,
            execution=replace(
                config.execution,
                broker="alpaca",
                alpaca_url=fake.url,
                alpaca_stream_url=fake.stream_url,
            ),
        )
        engine = TradingEngine(config, tmp_path)
        engine.pause()
        fake.wait_for_listener()
        daemon = TradingDaemon(config, tmp_path, engine, control_socket=False, oms_poll_s=0.01)
        task = asyncio.create_task(daemon.run())
        await _until(lambda: daemon.health.get("oms_events") is TaskHealth.RUNNING)
        dead = threading.Thread(target=lambda: None)
        dead.start()
        dead.join()
        real_thread, engine.broker._thread = engine.broker._thread, dead  # the stream died
        await asyncio.wait_for(task, timeout=20)  # escalation stops the daemon
        engine.broker._thread = real_thread
        assert daemon.health["oms_events"] is TaskHealth.FAILED
        assert "trade-updates stream stopped" in daemon.failures["oms_events"]
        assert any("task oms_events failed" in a for a in engine.snapshot().alerts)
        assert engine.audit.search(event="TASK_FAILED")
        assert engine.audit.search(event="TASK_ESCALATED")
        engine.close()


async def test_the_outbox_sender_is_a_supervised_daemon_task(
    short_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("QGTM_PUBLISH_SECRET", "s" * 32)
    config = replace(_live(short_config), publish=PublishConfig(url="http://127.0.0.1:9"))
    runs: list[int] = []

    async def flaky_run(self: OutboxSender) -> None:
        runs.append(1)
        if len(runs) == 1:
            raise OSError("publisher connection pool broke")
        await asyncio.Event().wait()

    monkeypatch.setattr(OutboxSender, "run", flaky_run)
    engine = TradingEngine(config, tmp_path)
    engine.pause()
    daemon = TradingDaemon(config, tmp_path, engine, control_socket=False)
    assert "outbox" in {s.name for s in daemon.specs}
    task = asyncio.create_task(daemon.run())
    await _until(lambda: len(runs) == 2 and daemon.health.get("outbox") is TaskHealth.RUNNING)
    assert daemon.restarts["outbox"] == 1
    assert any("task outbox failed" in a for a in engine.snapshot().alerts)
    daemon.stop()
    await task
    engine.close()


# ----- who did it -------------------------------------------------------------------------
async def test_actions_over_the_socket_are_audited_with_the_peer_and_reads_are_not(
    short_config: Config,
):
    data_dir = Path(tempfile.mkdtemp(prefix="qgtm-", dir="/tmp"))  # AF_UNIX paths are short
    config = _live(short_config)
    engine = TradingEngine(config, data_dir)
    engine.pause()
    daemon = TradingDaemon(config, data_dir, engine)
    task = asyncio.create_task(daemon.run())
    await _until(lambda: (data_dir / "engine.sock").exists())
    reader, writer = await asyncio.open_unix_connection(str(data_dir / "engine.sock"))
    requests = [
        Request(1, "engine.pause"),
        Request(2, "risk.add_operator", {"operator": "alice", "passphrase": "correct horse"}),
        Request(3, "signals.recent", {"limit": 5}),  # a read: answered, never audited
        Request(4, "risk.status"),
    ]
    for request in requests:
        writer.write(wire.encode_request(request))
        await writer.drain()
        reply = wire.decode_server(await reader.readline())
        assert reply.id == request.id and reply.ok, reply
    writer.close()
    daemon.stop()
    await task
    actions = engine.audit.search(event="OPERATOR_ACTION")
    assert [r.payload["action"] for r in actions] == ["risk.add_operator", "engine.pause"]
    for record in actions:
        assert record.actor == getpass.getuser()
        assert record.payload["peer_uid"] == os.getuid()
        assert record.payload["peer_pid"] == os.getpid()  # this process connected
    call = next(r for r in actions if r.payload["action"] == "risk.add_operator")
    assert call.payload["args"] == {"operator": "alice", "passphrase": "***"}
    dump = "\n".join(str(row) for row in engine.state.conn.execute("SELECT * FROM audit"))
    assert "correct horse" not in dump
    assert engine.audit.verify() is None
    engine.close()


def test_the_data_refresh_command_defaults_to_every_keyed_source(
    short_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_bars
):
    engine = TradingEngine(short_config, tmp_path)
    asked: list[tuple[str, ...]] = []
    real = engine.refresh_data_locked
    monkeypatch.setattr(engine, "refresh_data_locked", lambda s: asked.append(tuple(s)) or [])
    engine.call("data.refresh")
    assert asked == [("fred", "cftc", "eia", "lbma")]  # the Data screen's "refresh all"
    monkeypatch.setattr(engine, "refresh_data_locked", real)
    lines = engine.call("data.refresh", sources=["alpaca"])  # under the step lock, no deadlock
    assert lines == ["alpaca: 3 rows, 1 critical quality failures"]
    assert engine.snapshot().data_refresh.state == "OK"
    engine.close()


def test_the_refresh_view_travels_over_the_attach_wire(short_config: Config, tmp_path: Path):
    from qgtm.core.snapshot import DataRefreshView

    engine = TradingEngine(short_config, tmp_path)
    view = DataRefreshView(
        "FAILED",
        "2026-03-02T18:00:00-05:00",
        "2026-03-02T18:00:04-05:00",
        ("alpaca", "fred"),
        ("alpaca: 90 rows, 0 critical quality failures", "fred: FAILED no key"),
    )
    engine._publish_refresh(view)
    snap = engine.snapshot()
    assert wire.decode_snapshot(wire.encode_snapshot(snap)) == snap
    assert wire.decode_snapshot(wire.encode_snapshot(snap)).data_refresh == view
    engine.close()
