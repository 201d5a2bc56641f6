"""Heartbeat and dead-man's switch, independent of the event loop.

The daemon's heartbeat task writes the wall-clock time to `heartbeat.sqlite` (its own
file, so a long engine transaction never delays a beat). The watchdog is a separate OS
thread with its own SQLite connection: when the newest beat is older than the timeout
(the loop is blocked, wedged or dead), it calls `on_stall` once, which flattens through
the broker; it re-arms when beats resume.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

HEARTBEAT_DB = "heartbeat.sqlite"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS heartbeat ("
    "id INTEGER PRIMARY KEY CHECK (id = 1), beat_at REAL NOT NULL, pid INTEGER NOT NULL)"
)


class Heartbeat:
    """Writes beats; used by the daemon's heartbeat task on the event loop."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / HEARTBEAT_DB
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(_SCHEMA)

    def beat(self, now: float | None = None) -> float:
        """Record that the loop is alive at `now` (wall-clock seconds)."""
        at = time.time() if now is None else now
        self._conn.execute(
            "INSERT INTO heartbeat (id, beat_at, pid) VALUES (1, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET beat_at = excluded.beat_at, pid = excluded.pid",
            (at, os.getpid()),
        )
        return at

    def close(self) -> None:
        """Close the heartbeat file."""
        self._conn.close()


def read_heartbeat(path: Path) -> float | None:
    """The newest beat in `path`, or None if none was written."""
    if not path.exists():
        return None
    conn = sqlite3.connect(path, timeout=1.0)
    try:
        row = conn.execute("SELECT beat_at FROM heartbeat WHERE id = 1").fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()
    return None if row is None else float(row[0])


class Watchdog(threading.Thread):
    """Dead-man's switch: fires `on_stall(age_s)` when the heartbeat is older than `timeout_s`.

    `on_stall` returns True once the emergency action is done; False means "could not act
    yet" and the watchdog tries again on the next poll.
    """

    def __init__(
        self,
        data_dir: Path,
        timeout_s: float,
        on_stall: Callable[[float], bool],
        poll_s: float | None = None,
    ) -> None:
        super().__init__(name="qgtm-watchdog", daemon=True)
        self.path = data_dir / HEARTBEAT_DB
        self.timeout_s = timeout_s
        self.poll_s = poll_s if poll_s is not None else max(timeout_s / 10, 0.05)
        self.on_stall = on_stall
        self.fired = 0
        self.last_age: float | None = None
        self._armed = True
        self._halt = threading.Event()
        self._started_at = time.time()

    def run(self) -> None:
        """Poll the heartbeat until stopped."""
        while not self._halt.wait(self.poll_s):
            try:
                self.check()
            except Exception:  # the watchdog itself must never die silently
                log.exception("event=watchdog_check_failed")

    def check(self, now: float | None = None) -> bool:
        """One poll; True if the switch fired on this poll."""
        now = time.time() if now is None else now
        beat = read_heartbeat(self.path)
        age = now - (beat if beat is not None else self._started_at)
        self.last_age = age
        if age <= self.timeout_s:
            self._armed = True
            return False
        if not self._armed:
            return False
        log.critical(
            "event=WATCHDOG_STALL heartbeat_age_s=%.2f timeout_s=%.2f action=emergency_flatten",
            age,
            self.timeout_s,
        )
        if self.on_stall(age):
            self._armed = False
            self.fired += 1
            return True
        return False

    def stop(self) -> None:
        """Stop polling (joins the thread)."""
        self._halt.set()
        if self.is_alive():
            self.join(timeout=5)
