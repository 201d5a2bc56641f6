"""Append-only, hash-chained audit log in `state.sqlite`.

Each record stores the SHA-256 of the previous record's hash concatenated with its own
canonical JSON body, so altering or removing any record breaks every hash after it.
Each simulated day is also sealed with a Merkle root over its records' hashes
(`audit_merkle`), so truncating the tail of a sealed day is caught too.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qgtm.engine.state_schema import migrate

GENESIS_HASH = "0" * 64


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


def merkle_root(leaves: list[str]) -> str:
    """Merkle tree hash of hex leaves as in RFC 6962 section 2.1.

    MTH({}) = SHA-256(""); MTH({d}) = SHA-256(0x00 || d);
    MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest power of two < n.
    """

    def mth(items: list[bytes]) -> bytes:
        n = len(items)
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return hashlib.sha256(b"\x00" + items[0]).digest()
        k = 1 << ((n - 1).bit_length() - 1)
        return hashlib.sha256(b"\x01" + mth(items[:k]) + mth(items[k:])).digest()

    return mth([bytes.fromhex(leaf) for leaf in leaves]).hex()


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """Outcome of a full verification: `first_bad` is None when everything checks out."""

    records: int
    sealed_days: int
    first_bad: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the chain and every day seal are intact."""
        return self.first_bad is None and not self.reason


_COLUMNS = "seq, recorded_at, sim_time, event, actor, payload, prev_hash, hash"


def _record(row: tuple) -> AuditRecord:
    return AuditRecord(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6], row[7])


class AuditLog:
    """Writes and verifies the chain; callers pass the connection of their transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        migrate(conn)  # tables: state_schema

    def append(
        self, event: str, actor: str, sim_time: datetime | str, payload: dict[str, Any]
    ) -> AuditRecord:
        """Append one record inside the caller's current transaction.

        The first record of a new simulated day seals the records since the last seal
        with their Merkle root.
        """
        last = self._conn.execute(
            "SELECT seq, hash, sim_time FROM audit ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq, prev_hash = (1, GENESIS_HASH) if last is None else (last[0] + 1, last[1])
        recorded_at = datetime.now(UTC).isoformat(timespec="microseconds")
        sim_text = sim_time.isoformat() if isinstance(sim_time, datetime) else sim_time
        if last is not None and last[2][:10] != sim_text[:10]:
            self._seal_through(last[0])
        payload_text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        body = _body(seq, recorded_at, sim_text, event, actor, payload_text)
        digest = record_hash(prev_hash, body)
        self._conn.execute(
            f"INSERT INTO audit ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, recorded_at, sim_text, event, actor, payload_text, prev_hash, digest),
        )
        return AuditRecord(seq, recorded_at, sim_text, event, actor, payload, prev_hash, digest)

    def _seal_through(self, last_seq: int) -> None:
        row = self._conn.execute("SELECT max(last_seq) FROM audit_merkle").fetchone()
        first_seq = (row[0] or 0) + 1
        if first_seq > last_seq:
            return
        rows = self._conn.execute(
            "SELECT hash, sim_time FROM audit WHERE seq BETWEEN ? AND ? ORDER BY seq",
            (first_seq, last_seq),
        ).fetchall()
        self._conn.execute(
            "INSERT INTO audit_merkle (first_seq, last_seq, day, count, root) "
            "VALUES (?, ?, ?, ?, ?)",
            (first_seq, last_seq, rows[-1][1][:10], len(rows), merkle_root([r[0] for r in rows])),
        )

    def tail(self, limit: int = 50) -> list[AuditRecord]:
        """The newest `limit` records, newest first."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM audit ORDER BY seq DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_record(r) for r in rows]

    def search(
        self,
        event: str | None = None,
        actor: str | None = None,
        text: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 200,
    ) -> list[AuditRecord]:
        """Newest-first records matching every given filter.

        `event`/`actor` match exactly (case-insensitive); `text` is a case-insensitive
        substring of the event, actor or payload; `since`/`until` bound the simulated
        date (ISO, inclusive).
        """
        where, params = [], []
        if event:
            where.append("upper(event) = upper(?)")
            params.append(event)
        if actor:
            where.append("lower(actor) = lower(?)")
            params.append(actor)
        if text:
            where.append("(instr(lower(payload), lower(?)) OR instr(lower(event), lower(?)))")
            params.extend([text, text])
        if since:
            where.append("substr(sim_time, 1, 10) >= ?")
            params.append(since)
        if until:
            where.append("substr(sim_time, 1, 10) <= ?")
            params.append(until)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM audit {clause} ORDER BY seq DESC LIMIT ?", (*params, limit)
        ).fetchall()
        return [_record(r) for r in rows]

    def verify(self) -> int | None:
        """Walk the whole chain and the day seals; the seq of the first bad record, or None."""
        result = self.verify_all()
        if result.ok:
            return None
        return result.first_bad if result.first_bad is not None else 0

    def verify_all(self) -> VerifyResult:
        """Check every record's hash chain, then every day's Merkle seal.

        A file the database engine cannot read at all is reported as bad, not raised.
        """
        try:
            return self._verify()
        except sqlite3.DatabaseError as exc:
            return VerifyResult(0, 0, None, f"audit database unreadable: {exc}")

    def _verify(self) -> VerifyResult:
        prev_hash = GENESIS_HASH
        expected_seq = 1
        hashes: dict[int, str] = {}
        cursor = self._conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq")
        for seq, recorded_at, sim_time, event, actor, payload, stored_prev, stored_hash in cursor:
            if seq != expected_seq:
                bad = min(seq, expected_seq)
                return VerifyResult(expected_seq - 1, 0, bad, f"record {bad} missing or moved")
            body = _body(seq, recorded_at, sim_time, event, actor, payload)
            if stored_prev != prev_hash:
                return VerifyResult(seq - 1, 0, seq, "previous-hash link broken")
            if record_hash(prev_hash, body) != stored_hash:
                return VerifyResult(seq - 1, 0, seq, "record hash does not match its content")
            hashes[seq] = stored_hash
            prev_hash = stored_hash
            expected_seq += 1
        count = expected_seq - 1
        seals = self._conn.execute(
            "SELECT first_seq, last_seq, day, count, root FROM audit_merkle ORDER BY first_seq"
        ).fetchall()
        next_first = 1
        for first_seq, last_seq, day, n, root in seals:
            if first_seq != next_first or last_seq < first_seq or n != last_seq - first_seq + 1:
                return VerifyResult(count, 0, first_seq, f"day seal {day} has a bad range")
            if last_seq > count:
                return VerifyResult(count, 0, count + 1, f"records of sealed day {day} missing")
            leaves = [hashes[s] for s in range(first_seq, last_seq + 1)]
            if merkle_root(leaves) != root:
                return VerifyResult(count, 0, first_seq, f"Merkle root of day {day} differs")
            next_first = last_seq + 1
        return VerifyResult(count, len(seals))

    def merkle_days(self) -> list[tuple[str, int, str]]:
        """(day, records, root) of every sealed day, oldest first."""
        return [
            (r[0], r[1], r[2])
            for r in self._conn.execute(
                "SELECT day, count, root FROM audit_merkle ORDER BY first_seq"
            )
        ]
