"""A second `qgtm` attaches to the running daemon over its Unix socket instead of trading."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from qgtm.core.enums import KillTier, Mode, Source
from qgtm.core.snapshot import AuditRow, EngineSnapshot, OrderRow, PositionRow, QuoteRow
from qgtm.engine.live import wire
from qgtm.engine.live.attach import AttachError, RemoteCommandError, SocketClient
from qgtm.engine.live.control import socket_path

SHORT = {"QGTM_DEMO__END": "2010-06-30", "QGTM_DEMO__SEED": "11"}


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A real `qgtm --daemon` subprocess at 4 sessions per second, shared by this module."""
    tmp_path = tmp_path_factory.mktemp("daemon")
    log = (tmp_path / "daemon.out").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "qgtm.cli", "--data-dir", str(tmp_path), "--daemon", "--speed", "4"],
        env={**os.environ, **SHORT},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while "event=control_listening" not in (tmp_path / "daemon.out").read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"daemon did not listen: {(tmp_path / 'daemon.out').read_text()}")
        time.sleep(0.05)
    yield proc, tmp_path
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    log.close()


def test_snapshot_round_trips_through_the_wire_format_exactly():
    snap = EngineSnapshot(
        version=7,
        mode=Mode.PAPER,
        source=Source.DEMO,
        session=date(2009, 3, 9),
        sim_time=datetime(2009, 3, 9, 16, tzinfo=timezone(timedelta(hours=-4))),
        running=False,
        speed=0.5,
        kill_tier=KillTier.THROTTLE,
        equity=1_000_123.45,
        cash=12.5,
        daily_pnl=-3.25,
        total_pnl=123.45,
        drawdown=0.07,
        gross_leverage=0.6,
        sessions_done=42,
        watchlist=(QuoteRow("GLD", "metals", 90.1, 0.012, 1000),),
        positions=(PositionRow("GLD", -10, 90.0, 90.1, -901.0, -1.0, -0.001),),
        equity_curve=((date(2009, 3, 6), 1e6), (date(2009, 3, 9), 1_000_123.45)),
        recent_orders=(
            OrderRow("id-1", date(2009, 3, 6), "GLD", "SELL", 10, "FILLED", 90.0, None),
        ),
        recent_audit=(AuditRow(1, "2009-03-09T15:30", "ORDER_FILLED", "engine", "x=1"),),
        alerts=("kill tier WARN -> THROTTLE",),
    )
    line = wire.push(snap)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    back = wire.decode_server(line).data
    assert back == snap
    assert back.kill_tier is KillTier.THROTTLE and back.sim_time.utcoffset() == timedelta(hours=-4)
    reply = wire.decode_server(wire.reply(7, snap))  # a command's result, by its declared type
    assert reply.id == 7 and wire.decode_result("engine.snapshot", reply.result) == snap


def test_second_qgtm_attaches_instead_of_starting_an_engine(daemon, monkeypatch):
    from qgtm import cli
    from qgtm.tui.app import QGTMApp

    _, data_dir = daemon
    seen: list[object] = []
    monkeypatch.setattr(QGTMApp, "run", lambda self, *a, **k: seen.append(self.client))
    monkeypatch.setattr(
        "qgtm.engine.live.engine.TradingEngine.__init__",
        lambda *a, **k: (_ for _ in ()).throw(AssertionError("a second engine was built")),
    )
    for key, value in SHORT.items():
        monkeypatch.setenv(key, value)
    assert cli.main(["--data-dir", str(data_dir)]) == 0
    (client,) = seen
    assert isinstance(client, SocketClient) and client.path == socket_path(data_dir)


async def test_the_terminal_runs_over_a_socket_client(daemon):
    from qgtm.tui.app import QGTMApp

    _, data_dir = daemon
    client = SocketClient(socket_path(data_dir))
    app = QGTMApp(client)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        assert app.latest is not None and app.latest.session is not None
        await pilot.press("p")
        await pilot.pause(0.5)
        assert client.snapshot().running is False
        await pilot.press("7")
        await pilot.pause(0.2)
        assert type(app.screen).__name__ == "ReconScreen"
        await pilot.press("r")
        await pilot.pause(0.5)
        assert client.snapshot().recon is not None
        await pilot.press("q")


ATTACH_CODE = """
import asyncio, json, sys
from pathlib import Path
from qgtm.engine.live.attach import SocketClient
from qgtm.engine.live.control import socket_path
from qgtm.tui.app import QGTMApp

async def attach():
    client = SocketClient(socket_path(Path(sys.argv[1])))
    await client.start()
    try:
        bars = await client.call("market.bars", symbol="GLD", lookback=5)
        return client.snapshot().session is not None and len(bars) == 5
    finally:
        await client.stop()

ok = asyncio.run(attach())
heavy = ("duckdb", "polars", "numba", "alpaca", "scipy", "statsmodels", "pandas")
print(json.dumps({"ok": ok, "loaded": sorted(m for m in heavy if m in sys.modules),
                  "engine": sorted(m for m in sys.modules if m.startswith("qgtm.engine"))}))
"""


def test_attaching_loads_no_engine_library(daemon):
    """The attach path (socket client, wire, the terminal) loads neither duckdb, polars,
    numba, alpaca nor scipy: only core, the client side of the socket and Textual."""
    import json

    _, data_dir = daemon
    done = subprocess.run(
        [sys.executable, "-c", ATTACH_CODE, str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result = json.loads(done.stdout)
    assert result["ok"] is True
    assert result["loaded"] == []
    assert set(result["engine"]) <= {
        "qgtm.engine",
        "qgtm.engine.live",
        "qgtm.engine.live.attach",
        "qgtm.engine.live.control",
        "qgtm.engine.live.wire",
    }


async def test_an_attached_terminal_shows_which_daemon_and_since_when(daemon):
    from textual.widgets import Label

    from qgtm.tui.app import QGTMApp

    proc, data_dir = daemon
    client = SocketClient(socket_path(data_dir))
    app = QGTMApp(client)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.3)
        banner = app.screen.query_one("#banner")
        label = app.screen.query_one("#attached", Label)
        assert banner.has_class("-attached") and label.display
        since = client.info.started_at.astimezone()
        assert str(label.content) == f"ATTACHED pid {proc.pid} since {since:%H:%M}"
        told = [n.message for n in app._notifications]
        assert f"ATTACHED pid {proc.pid} since {since:%H:%M} on {data_dir}" in told
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert str(label.content) == "ATT"  # an 80-column banner keeps its other fields
        await pilot.press("q")


def test_the_daemon_logs_one_summary_line_per_processed_session(daemon):
    _, data_dir = daemon
    deadline = time.monotonic() + 20
    lines: list[str] = []
    while len(lines) < 3 and time.monotonic() < deadline:
        out = (data_dir / "daemon.out").read_text()
        lines = [line for line in out.splitlines() if "event=session_summary" in line]
        time.sleep(0.2)
    assert len(lines) >= 3
    sessions = [line.split("session=")[1].split()[0] for line in lines]
    assert len(set(sessions)) == len(sessions)  # one line per session
    assert sessions == sorted(sessions)
    fields = dict(part.split("=", 1) for part in lines[-1].split(" logger=")[1].split()[2:])
    assert set(fields) == {"session", "equity", "daily_pnl", "orders", "fills", "kill_tier"}
    assert float(fields["equity"]) > 0 and int(fields["orders"]) >= 0
    assert fields["kill_tier"] in {"NORMAL", "WARN", "THROTTLE", "NO_NEW", "FLATTEN"}


def test_a_socket_open_to_others_is_refused(tmp_path: Path):
    import socket as pysocket

    path = tmp_path / "engine.sock"
    server = pysocket.socket(pysocket.AF_UNIX)
    server.bind(str(path))
    os.chmod(path, 0o666)
    try:
        with pytest.raises(AttachError, match="reachable by other users"):
            SocketClient(path).check_socket()
    finally:
        server.close()
    with pytest.raises(AttachError, match="no daemon socket"):
        SocketClient(tmp_path / "missing.sock").check_socket()


def test_qgtm_backtest_runs_on_the_bars_of_the_engine_holding_the_store(
    daemon, monkeypatch, capsys
):
    """DuckDB opens market.duckdb in one process: `qgtm backtest` borrows the daemon's
    processed sessions over the socket instead of failing."""
    import json

    from qgtm import cli

    _, data_dir = daemon
    for key, value in SHORT.items():
        monkeypatch.setenv(key, value)

    async def advance() -> None:
        client = SocketClient(socket_path(data_dir))
        await client.start(subscribe=False)
        try:
            await client.advance(12)  # enough sessions for a 3/5 crossover
        finally:
            await client.stop()

    asyncio.run(advance())
    argv = ["--data-dir", str(data_dir), "backtest", "sma_ref", "--param", "fast=3"]
    assert cli.main([*argv, "--param", "slow=5", "--json"]) == 0
    out, err = capsys.readouterr()
    (lent,) = [line for line in err.splitlines() if "held by the running engine" in line]
    until = lent.split(" to ")[-1].strip()
    summary = json.loads(out)
    assert summary["end"] == until < SHORT["QGTM_DEMO__END"]  # not the unprocessed bars
    assert Path(summary["artifact"]).exists()


async def test_socket_client_streams_state_and_runs_commands(daemon):
    proc, data_dir = daemon
    sock = socket_path(data_dir)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert os.stat(sock).st_uid == os.getuid()
    client = SocketClient(sock)
    await client.start()
    try:
        assert client.info.pid == proc.pid
        assert client.info.data_dir == str(data_dir)
        assert "recon.run" in client.info.commands
        client.resume()  # an earlier test in this module may have paused the daemon
        first = client.snapshot().version
        deadline = time.monotonic() + 20
        while client.snapshot().version == first and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert client.snapshot().version > first  # the daemon's steps stream in
        client.pause()
        await asyncio.sleep(0.5)
        paused = client.snapshot()
        assert paused.running is False
        await asyncio.sleep(0.6)
        assert client.snapshot().session == paused.session  # held while paused
        before = client.snapshot().sessions_done
        await client.advance(2)
        assert client.snapshot().sessions_done == before + 2
        result = await client.call("recon.run")
        assert result.discrepancies == 0 and result.broker == result.local
        with pytest.raises(RemoteCommandError, match="unknown engine command"):
            await client.call("no.such")
        client.resume()
        await asyncio.sleep(0.2)
    finally:
        await client.stop()
    assert proc.poll() is None  # detaching leaves the daemon running
    # stopping the daemon with a terminal attached ends its connection cleanly
    attached = SocketClient(sock)
    await attached.start()
    try:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        await attached.stop()
    out = (data_dir / "daemon.out").read_text()
    assert "event=daemon_stop" in out
    assert "Traceback" not in out and "Exception in callback" not in out
    audit = subprocess.run(
        [
            sys.executable,
            "-m",
            "qgtm.cli",
            "--data-dir",
            str(data_dir),
            "audit",
            "search",
            "--event",
            "OPERATOR_ACTION",
            "-n",
            "100",
        ],
        env={**os.environ, **SHORT},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "action=engine.pause" in audit and "action=engine.advance" in audit
    assert "action=recon.run" in audit
    assert "action=engine.subscribe" not in audit and "action=engine.hello" not in audit
    import getpass

    assert getpass.getuser() in audit


def test_a_held_lock_without_a_daemon_socket_is_a_one_line_error(tmp_path: Path, capsys):
    from qgtm import cli
    from qgtm.engine.lock import EngineLock

    with EngineLock(tmp_path):
        assert cli.main(["--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "already runs on" in err and "cannot be attached to" in err


def test_a_list_of_results_round_trips_through_the_wire_by_its_declared_type():
    from datetime import date

    from qgtm.core.results import SignalRecord

    rows = [SignalRecord("tsmom", date(2020, 1, 2), "GLD", "LONG", 0.5, 0.7, "up")]
    reply = wire.decode_server(wire.reply(1, rows))
    assert wire.decode_result("signals.recent", reply.result) == rows


def test_a_held_store_without_a_daemon_socket_fails_a_backtest_in_one_line(tmp_path: Path):
    import duckdb

    holder = duckdb.connect(str(tmp_path / "market.duckdb"))  # stands in for an engine
    try:  # in another process: DuckDB shares one file between connections of a process
        done = subprocess.run(
            [sys.executable, "-m", "qgtm.cli", "--data-dir", str(tmp_path), "backtest", "sma_ref"],
            capture_output=True,
            text=True,
            env={**os.environ, **SHORT},
        )
    finally:
        holder.close()
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip()
    assert err.count("\n") == 0 and "did not lend its bars" in err and "no daemon socket" in err
