"""`qgtm --daemon` as a user runs it: a real process, real signals, a real lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from qgtm.engine.lock import EngineLock, EngineLockedError

SHORT = {"QGTM_DEMO__END": "2010-06-30", "QGTM_DEMO__SEED": "11"}


def _qgtm(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "qgtm.cli", "--data-dir", str(data_dir), *args]


def _env() -> dict[str, str]:
    return {**os.environ, **SHORT}


def test_daemon_runs_n_sessions_and_resumes_where_it_stopped(tmp_path: Path):
    first = subprocess.run(
        _qgtm(tmp_path, "--daemon", "--sessions", "5", "--speed", "0"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "event=daemon_stop sessions=5" in first.stdout
    second = subprocess.run(
        _qgtm(tmp_path, "--daemon", "--sessions", "3", "--speed", "0"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "event=daemon_stop sessions=3" in second.stdout
    status = subprocess.run(
        _qgtm(tmp_path, "status"), env=_env(), capture_output=True, text=True, check=True
    )
    assert "sessions     8" in status.stdout


def test_sigterm_stops_the_daemon_cleanly(tmp_path: Path):
    proc = subprocess.Popen(
        _qgtm(tmp_path, "--daemon", "--speed", "20"),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (tmp_path / "state.sqlite").exists():
        time.sleep(0.1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "event=daemon_stop" in out


def test_a_second_engine_on_the_same_data_dir_is_refused(tmp_path: Path):
    with EngineLock(tmp_path):
        result = subprocess.run(
            _qgtm(tmp_path, "--daemon", "--sessions", "1"),
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2
        assert "already runs on" in result.stderr
        try:
            EngineLock(tmp_path).acquire()
        except EngineLockedError:
            pass
        else:
            raise AssertionError("second lock in the same process was granted")
