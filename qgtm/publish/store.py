"""The publisher's own SQLite store: items, per-tier releases, subscribers, deliveries.

API keys are stored only as SHA-256 hashes (they are 256-bit random tokens, so a plain
hash is enough; no password stretching is needed) and shown once, on creation/rotation.
A delivery row exists once per (subscriber, item, channel) — the primary key — so a
signal can be delivered at most once per subscriber and channel unless an operator
explicitly replays it.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from qgtm.publish.tiers import ADMIN_TIER, Tier

CHANNELS = ("discord", "telegram", "email")

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    received_ts REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS releases (
    item_id TEXT NOT NULL REFERENCES items(id),
    tier TEXT NOT NULL,
    release_ts REAL NOT NULL,
    materialized INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (item_id, tier)
);
CREATE INDEX IF NOT EXISTS releases_due ON releases(materialized, release_ts);
CREATE TABLE IF NOT EXISTS subscribers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    tier TEXT NOT NULL,
    role TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    discord_webhook TEXT,
    discord_user_id TEXT,
    telegram_chat_id TEXT,
    email TEXT,
    created_at TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS subscribers_tier ON subscribers(tier, active);
CREATE TABLE IF NOT EXISTS deliveries (
    subscriber_id INTEGER NOT NULL REFERENCES subscribers(id),
    item_id TEXT NOT NULL REFERENCES items(id),
    channel TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered_at TEXT,
    delivered_ts REAL,
    PRIMARY KEY (subscriber_id, item_id, channel)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries(status, next_try);
"""

_CHANNEL_COLUMN = {"discord": "discord_webhook", "telegram": "telegram_chat_id", "email": "email"}


def hash_key(key: str) -> str:
    """SHA-256 hex of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh API key: 'qgtm_' + 43 url-safe characters (256 bits)."""
    return "qgtm_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A subscriber as stored (never with its key)."""

    id: int
    name: str
    tier: str
    role: str
    key_prefix: str
    discord_webhook: str | None
    telegram_chat_id: str | None
    email: str | None
    created_at: str
    active: bool

    def public(self) -> dict[str, Any]:
        """What the admin API shows: channels as flags, no webhook tokens."""
        return {
            "id": self.id,
            "name": self.name,
            "tier": self.tier,
            "role": self.role,
            "key_prefix": self.key_prefix,
            "channels": [c for c in CHANNELS if getattr(self, _CHANNEL_COLUMN[c])],
            "created_at": self.created_at,
            "active": self.active,
        }


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """One delivery to attempt: who, what, where."""

    subscriber_id: int
    item_id: str
    channel: str
    address: str
    tier: str
    kind: str
    issued_at: str
    payload: dict[str, Any]
    attempts: int


_SUB_COLS = (
    "id, name, tier, role, key_prefix, discord_webhook, telegram_chat_id, email, created_at, active"
)


class PublisherStore:
    """Thread-safe wrapper over one SQLite connection (the API and the dispatcher share it)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        self.lock = threading.RLock()

    def close(self) -> None:
        """Close the database."""
        with self.lock:
            self.conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction under the store lock."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # ----- items -------------------------------------------------------------------
    def ingest(
        self, items: Iterable[dict[str, Any]], tiers: dict[str, Tier], now: datetime
    ) -> tuple[list[str], list[str]]:
        """Store new items with their release time per tier; (accepted, duplicates)."""
        accepted: list[str] = []
        duplicates: list[str] = []
        with self.tx() as conn:
            seq = conn.execute("SELECT coalesce(max(seq), 0) FROM items").fetchone()[0]
            for item in items:
                issued = datetime.fromisoformat(item["issued_at"])
                seq += 1
                cur = conn.execute(
                    "INSERT OR IGNORE INTO items (id, seq, kind, issued_at, received_at, "
                    "received_ts, payload) VALUES (?,?,?,?,?,?,?)",
                    (
                        item["id"],
                        seq,
                        item["kind"],
                        issued.isoformat(),
                        now.isoformat(),
                        time.time(),
                        json.dumps(item["payload"]),
                    ),
                )
                if cur.rowcount != 1:
                    duplicates.append(item["id"])
                    seq -= 1
                    continue
                accepted.append(item["id"])
                if item["kind"] == "alert":
                    rows = [(item["id"], ADMIN_TIER, now.timestamp())]
                else:
                    rows = [
                        (item["id"], t.name, t.release_at(issued).timestamp())
                        for t in tiers.values()
                    ]
                conn.executemany(
                    "INSERT INTO releases (item_id, tier, release_ts) VALUES (?,?,?)", rows
                )
        return accepted, duplicates

    def released(
        self, tier: str, now: datetime, after_seq: int = 0, limit: int = 100
    ) -> list[tuple[int, str, str, dict[str, Any]]]:
        """Signals released to `tier` by `now`, oldest first: (seq, id, issued_at, payload)."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT i.seq, i.id, i.issued_at, i.payload FROM items i JOIN releases r "
                "ON r.item_id = i.id WHERE r.tier = ? AND i.kind = 'signal' AND r.release_ts <= ? "
                "AND i.seq > ? ORDER BY i.seq LIMIT ?",
                (tier, now.timestamp(), after_seq, limit),
            ).fetchall()
        return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def latest_released(self, tier: str, now: datetime, limit: int = 5) -> list[tuple]:
        """The newest `limit` signals released to `tier`, newest first."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT i.seq, i.id, i.issued_at, i.payload FROM items i JOIN releases r "
                "ON r.item_id = i.id WHERE r.tier = ? AND i.kind = 'signal' AND r.release_ts <= ? "
                "ORDER BY i.seq DESC LIMIT ?",
                (tier, now.timestamp(), limit),
            ).fetchall()
        return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    # ----- subscribers ---------------------------------------------------------------
    def add_subscriber(
        self,
        name: str,
        tier: str,
        role: str = "subscriber",
        discord_webhook: str | None = None,
        telegram_chat_id: str | None = None,
        email: str | None = None,
    ) -> tuple[Subscriber, str]:
        """Create a subscriber; returns it and its API key (the only time the key exists)."""
        key = new_key()
        with self.tx() as conn:
            cur = conn.execute(
                "INSERT INTO subscribers (name, tier, role, key_hash, key_prefix, discord_webhook, "
                "telegram_chat_id, email, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    name,
                    tier,
                    role,
                    hash_key(key),
                    key[:9],
                    discord_webhook,
                    telegram_chat_id,
                    email,
                    datetime.now().astimezone().isoformat(),
                ),
            )
            sub_id = cur.lastrowid
        sub = self.subscriber(int(sub_id or 0))
        assert sub is not None
        return sub, key

    def add_many(self, rows: list[tuple[str, str, str | None]]) -> None:
        """Bulk-create (name, tier, discord_webhook) subscribers (benchmarks, imports)."""
        now = datetime.now().astimezone().isoformat()
        with self.tx() as conn:
            conn.executemany(
                "INSERT INTO subscribers (name, tier, role, key_hash, key_prefix, "
                "discord_webhook, created_at) VALUES (?,?, 'subscriber', ?, ?, ?, ?)",
                [(n, t, hash_key(new_key()), "qgtm_????", w, now) for n, t, w in rows],
            )

    def rotate_key(self, sub_id: int) -> str | None:
        """Replace a subscriber's key; the new key, or None if there is no such subscriber."""
        key = new_key()
        with self.tx() as conn:
            cur = conn.execute(
                "UPDATE subscribers SET key_hash = ?, key_prefix = ? WHERE id = ?",
                (hash_key(key), key[:9], sub_id),
            )
        return key if cur.rowcount == 1 else None

    def subscriber(self, sub_id: int) -> Subscriber | None:
        """One subscriber by id."""
        with self.lock:
            row = self.conn.execute(
                f"SELECT {_SUB_COLS} FROM subscribers WHERE id = ?", (sub_id,)
            ).fetchone()
        return None if row is None else Subscriber(*row[:-1], bool(row[-1]))

    def by_key(self, key: str) -> Subscriber | None:
        """The active subscriber owning `key`."""
        with self.lock:
            row = self.conn.execute(
                f"SELECT {_SUB_COLS} FROM subscribers WHERE key_hash = ? AND active = 1",
                (hash_key(key),),
            ).fetchone()
        return None if row is None else Subscriber(*row[:-1], bool(row[-1]))

    def by_column(self, column: str, value: str) -> Subscriber | None:
        """The subscriber linked to a Discord user or Telegram chat."""
        assert column in ("discord_user_id", "telegram_chat_id")
        with self.lock:
            row = self.conn.execute(
                f"SELECT {_SUB_COLS} FROM subscribers WHERE {column} = ? AND active = 1",
                (value,),
            ).fetchone()
        return None if row is None else Subscriber(*row[:-1], bool(row[-1]))

    def link(self, key: str, column: str, value: str) -> Subscriber | None:
        """Attach a Discord user or Telegram chat to the subscriber owning `key`."""
        assert column in ("discord_user_id", "telegram_chat_id")
        with self.tx() as conn:
            cur = conn.execute(
                f"UPDATE subscribers SET {column} = ? WHERE key_hash = ? AND active = 1",
                (value, hash_key(key)),
            )
        return self.by_key(key) if cur.rowcount == 1 else None

    def subscribers(self, limit: int = 1000, offset: int = 0) -> list[Subscriber]:
        """Subscribers by id."""
        with self.lock:
            rows = self.conn.execute(
                f"SELECT {_SUB_COLS} FROM subscribers ORDER BY id LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
        return [Subscriber(*r[:-1], bool(r[-1])) for r in rows]

    # ----- deliveries ----------------------------------------------------------------
    def materialize(self, now: datetime) -> int:
        """Create pending deliveries for every release that is due; returns rows created."""
        created = 0
        ts = now.timestamp()
        with self.tx() as conn:
            for channel, column in _CHANNEL_COLUMN.items():
                cur = conn.execute(
                    "INSERT OR IGNORE INTO deliveries (subscriber_id, item_id, channel) "
                    f"SELECT s.id, r.item_id, '{channel}' FROM releases r JOIN subscribers s "
                    "ON (s.tier = r.tier OR (r.tier = ? AND s.role = 'admin')) "
                    f"WHERE r.materialized = 0 AND r.release_ts <= ? AND s.active = 1 "
                    f"AND s.{column} IS NOT NULL",
                    (ADMIN_TIER, ts),
                )
                created += cur.rowcount
            conn.execute(
                "UPDATE releases SET materialized = 1 WHERE materialized = 0 AND release_ts <= ?",
                (ts,),
            )
        return created

    def pending(self, limit: int = 500) -> list[PendingDelivery]:
        """Deliveries due for an attempt now (retry times are wall-clock)."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT d.subscriber_id, d.item_id, d.channel, s.discord_webhook, "
                "s.telegram_chat_id, s.email, s.tier, i.kind, i.issued_at, i.payload, d.attempts "
                "FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
                "JOIN items i ON i.id = d.item_id WHERE d.status = 'pending' AND d.next_try <= ? "
                "ORDER BY i.seq, d.subscriber_id LIMIT ?",
                (time.time(), limit),
            ).fetchall()
        out = []
        for r in rows:
            address = {"discord": r[3], "telegram": r[4], "email": r[5]}[r[2]]
            out.append(
                PendingDelivery(
                    r[0], r[1], r[2], address, r[6], r[7], r[8], json.loads(r[9]), r[10]
                )
            )
        return out

    def record_results(
        self,
        delivered: list[tuple[int, str, str]],
        failed: list[tuple[int, str, str, str, float, bool]],
        now: datetime,
    ) -> None:
        """Mark deliveries done, or schedule a retry (error, next_try, give_up)."""
        with self.tx() as conn:
            conn.executemany(
                "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, "
                "delivered_at = ?, delivered_ts = ?, last_error = NULL "
                "WHERE subscriber_id = ? AND item_id = ? AND channel = ?",
                [(now.isoformat(), time.time(), *d) for d in delivered],
            )
            conn.executemany(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, next_try = ?, "
                "status = CASE WHEN ? THEN 'failed' ELSE 'pending' END "
                "WHERE subscriber_id = ? AND item_id = ? AND channel = ?",
                [(err, nxt, give_up, s, i, c) for s, i, c, err, nxt, give_up in failed],
            )

    def replay(self, since: datetime, until: datetime, subscriber_id: int | None = None) -> int:
        """Re-deliver every delivery of items issued in [since, until]; returns rows reset."""
        sql = (
            "UPDATE deliveries SET status = 'pending', next_try = 0 WHERE item_id IN "
            "(SELECT id FROM items WHERE issued_at >= ? AND issued_at <= ?)"
        )
        params: list[Any] = [since.isoformat(), until.isoformat()]
        if subscriber_id is not None:
            sql += " AND subscriber_id = ?"
            params.append(subscriber_id)
        with self.tx() as conn:
            return conn.execute(sql, params).rowcount

    def status(self) -> dict[str, Any]:
        """Counts of items, subscribers by tier and deliveries by status."""
        with self.lock:
            items = dict(self.conn.execute("SELECT kind, count(*) FROM items GROUP BY kind"))
            subs = dict(
                self.conn.execute(
                    "SELECT tier, count(*) FROM subscribers WHERE active = 1 GROUP BY tier"
                )
            )
            dels = dict(
                self.conn.execute("SELECT status, count(*) FROM deliveries GROUP BY status")
            )
            err = self.conn.execute(
                "SELECT last_error FROM deliveries WHERE last_error IS NOT NULL "
                "ORDER BY next_try DESC LIMIT 1"
            ).fetchone()
        return {
            "items": items,
            "subscribers": subs,
            "deliveries": dels,
            "last_error": err[0] if err else None,
        }
