"""Append-only, hash-chained audit log in `state.sqlite`.

Each record stores the SHA-256 of the previous record's hash concatenated with its own
canonical JSON body, so altering or removing any record breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64

AUDIT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    recorded_at TEXT NOT NULL,
    sim_time TEXT NOT NULL,
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One verified-shape audit entry."""

    seq: int
    recorded_at: str
    sim_time: str
    event: str
    actor: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


def record_hash(prev_hash: str, body: dict[str, Any]) -> str:
    """SHA-256 hex of prev_hash + canonical JSON of the record body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def _body(seq: int, recorded_at: str, sim_time: str, event: str, actor: str, payload: str) -> dict:
    return {
        "seq": seq,
        "recorded_at": recorded_at,
        "sim_time": sim_time,
        "event": event,
        "actor": actor,
        "payload": payload,
    }


class AuditLog:
    """Writes and verifies the chain; callers pass the connection of their transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        conn.executescript(AUDIT_SCHEMA)

    def append(
        self, event: str, actor: str, sim_time: datetime | str, payload: dict[str, Any]
    ) -> AuditRecord:
        """Append one record inside the caller's current transaction."""
        last = self._conn.execute(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq, prev_hash = (1, GENESIS_HASH) if last is None else (last[0] + 1, last[1])
        recorded_at = datetime.now(UTC).isoformat(timespec="microseconds")
        sim_text = sim_time.isoformat() if isinstance(sim_time, datetime) else sim_time
        payload_text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        body = _body(seq, recorded_at, sim_text, event, actor, payload_text)
        digest = record_hash(prev_hash, body)
        self._conn.execute(
            "INSERT INTO audit (seq, recorded_at, sim_time, event, actor, payload, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, recorded_at, sim_text, event, actor, payload_text, prev_hash, digest),
        )
        return AuditRecord(seq, recorded_at, sim_text, event, actor, payload, prev_hash, digest)

    def tail(self, limit: int = 50) -> list[AuditRecord]:
        """The newest `limit` records, newest first."""
        rows = self._conn.execute(
            "SELECT seq, recorded_at, sim_time, event, actor, payload, prev_hash, hash "
            "FROM audit ORDER BY seq DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            AuditRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7]) for r in rows
        ]

    def verify(self) -> int | None:
        """Walk the whole chain; return the seq of the first bad record, or None if intact."""
        prev_hash = GENESIS_HASH
        expected_seq = 1
        cursor = self._conn.execute(
            "SELECT seq, recorded_at, sim_time, event, actor, payload, prev_hash, hash "
            "FROM audit ORDER BY seq"
        )
        for seq, recorded_at, sim_time, event, actor, payload, stored_prev, stored_hash in cursor:
            body = _body(seq, recorded_at, sim_time, event, actor, payload)
            if seq != expected_seq or stored_prev != prev_hash:
                return seq
            if record_hash(prev_hash, body) != stored_hash:
                return seq
            prev_hash = stored_hash
            expected_seq += 1
        return None
