"""Durable outbox in `state.sqlite` and the sender that pushes it to the publisher.

What is published (the engine's choice, documented here once):
  a *signal* is a change of the risk-approved target weight of one symbol at one
  rebalance, compared with the last target published for that symbol. It carries the
  direction of the new target (LONG / SHORT / FLAT), the new and previous weights, and the
  rationale of the strategy signals behind it (plus any risk cut). Changes smaller than
  `MIN_WEIGHT_CHANGE` are not news and are not published.
  An *alert* (kind=alert) is an owner notice: kill-tier changes now, and recon, watchdog and
  retrain notices through `enqueue_alert` as those parts arrive. Alerts go to the owner only.

Items are written with `INSERT OR IGNORE` inside the engine's per-session transaction, so
an item exists exactly when the session that produced it committed. Ids are stable
(derived from the decision), so a replayed session can never make a second item. The
sender marks an item sent only after the publisher acknowledged its id; until then it
retries with exponential backoff, however long the publisher is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from qgtm.core.enums import SignalDirection
from qgtm.core.publication import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ItemKind,
    sign,
    stable_id,
)
from qgtm.core.results import OutboxStatus
from qgtm.core.types import Signal
from qgtm.engine.state_schema import migrate

log = logging.getLogger(__name__)

MIN_WEIGHT_CHANGE = 0.005
INGEST_PATH = "/v1/ingest"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _direction(weight: float) -> SignalDirection:
    if weight > 1e-9:
        return SignalDirection.LONG
    if weight < -1e-9:
        return SignalDirection.SHORT
    return SignalDirection.FLAT


class Outbox:
    """The outbox table on the engine's state connection (writes join its transaction)."""

    def __init__(self, conn: sqlite3.Connection, clock: Callable[[], datetime] = _utc_now) -> None:
        self.conn = conn
        self.clock = clock
        migrate(conn)  # tables: state_schema

    def _insert(self, item_id: str, kind: ItemKind, payload: Mapping[str, Any]) -> bool:
        seq = self.conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM outbox").fetchone()[0]
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO outbox (id, seq, kind, issued_at, payload) VALUES (?,?,?,?,?)",
            (item_id, seq, kind.value, self.clock().isoformat(), json.dumps(payload)),
        )
        return cursor.rowcount == 1

    def enqueue_targets(
        self,
        approved: Mapping[str, float],
        signals: list[Signal],
        cuts: Mapping[str, str],
        decision_time: datetime,
        strategy_set: str,
    ) -> int:
        """Queue one signal per symbol whose approved target moved; returns how many."""
        previous = dict(self.conn.execute("SELECT symbol, weight FROM published_targets"))
        rationale: dict[str, list[str]] = {}
        for s in signals:
            rationale.setdefault(s.symbol, []).append(f"{s.strategy}: {s.rationale}".strip())
        queued = 0
        for symbol in sorted(set(previous) | set(approved)):
            new, old = float(approved.get(symbol, 0.0)), float(previous.get(symbol, 0.0))
            if abs(new - old) < MIN_WEIGHT_CHANGE:
                continue
            reasons = rationale.get(symbol, []) or ["no active strategy signal"]
            if symbol in cuts:
                reasons.append(f"risk: {cuts[symbol]}")
            payload = {
                "symbol": symbol,
                "direction": _direction(new).value,
                "weight": round(new, 6),
                "previous_weight": round(old, 6),
                "rationale": "; ".join(reasons),
                "decision_time": decision_time.isoformat(),
                "strategy_set": strategy_set,
            }
            item_id = stable_id("signal", strategy_set, decision_time.isoformat(), symbol)
            queued += self._insert(item_id, ItemKind.SIGNAL, payload)
            self.conn.execute(
                "INSERT INTO published_targets (symbol, weight) VALUES (?, ?) "
                "ON CONFLICT(symbol) DO UPDATE SET weight = excluded.weight",
                (symbol, new),
            )
        return queued

    def enqueue_alert(self, source: str, text: str, at: datetime) -> bool:
        """Queue an owner alert (kill tier, recon, watchdog, retrain); False if a repeat."""
        payload = {"source": source, "text": text, "at": at.isoformat()}
        return self._insert(
            stable_id("alert", source, at.isoformat(), text), ItemKind.ALERT, payload
        )


def outbox_status(db_path: Path) -> OutboxStatus:
    """Read the outbox counts on a connection of its own (safe beside the engine)."""
    conn = sqlite3.connect(db_path, timeout=5.0)
    try:
        migrate(conn)  # tables: state_schema
        counts = dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY status"))
        err = conn.execute(
            "SELECT last_error FROM outbox WHERE last_error IS NOT NULL ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        oldest = conn.execute(
            "SELECT issued_at FROM outbox WHERE status = 'pending' ORDER BY seq LIMIT 1"
        ).fetchone()
        last_sent = conn.execute("SELECT max(sent_at) FROM outbox").fetchone()
        return OutboxStatus(
            pending=counts.get("pending", 0),
            sent=counts.get("sent", 0),
            last_error=err[0] if err else None,
            oldest_pending=oldest[0] if oldest else None,
            last_sent_at=last_sent[0] if last_sent else None,
        )
    finally:
        conn.close()


class OutboxSender:
    """Pushes pending items to the publisher, oldest first, in signed batches.

    Backoff after a failure: min(max_backoff, base * 2**failures) seconds with +-20% jitter
    (the usual capped exponential backoff). An item is marked sent only when the
    publisher's response lists its id as accepted or already known.
    """

    def __init__(
        self,
        db_path: Path,
        url: str,
        secret: str,
        batch_size: int = 100,
        base_backoff: float = 0.5,
        max_backoff: float = 60.0,
        poll_interval: float = 0.5,
        timeout: float = 10.0,
    ) -> None:
        self.db_path = db_path
        self.url = url.rstrip("/") + INGEST_PATH
        self._secret = secret
        self.batch_size = batch_size
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.failures = 0
        self._stop = asyncio.Event()

    def __repr__(self) -> str:  # never show the secret
        return f"OutboxSender(url={self.url!r})"

    def _conn(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        migrate(conn)  # tables: state_schema
        return conn

    def _pending(self) -> list[tuple[str, str, str, str]]:
        conn = self._conn()
        try:
            return conn.execute(
                "SELECT id, kind, issued_at, payload FROM outbox WHERE status = 'pending' "
                "ORDER BY seq LIMIT ?",
                (self.batch_size,),
            ).fetchall()
        finally:
            conn.close()

    def _mark(self, sent: list[str], error: str | None, ids: list[str]) -> None:
        conn = self._conn()
        try:
            now = _utc_now().isoformat()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, "
                "last_error = NULL WHERE id = ?",
                [(now, i) for i in sent],
            )
            if error is not None:
                conn.executemany(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                    [(error, i) for i in ids if i not in set(sent)],
                )
            conn.execute("COMMIT")
        finally:
            conn.close()

    async def send_once(self, client: httpx.AsyncClient) -> int:
        """Push one batch; returns how many items were acknowledged (raises nothing)."""
        rows = await asyncio.to_thread(self._pending)
        if not rows:
            return 0
        items = [
            {"id": r[0], "kind": r[1], "issued_at": r[2], "payload": json.loads(r[3])} for r in rows
        ]
        body = json.dumps({"items": items}, separators=(",", ":")).encode()
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(ts),
            SIGNATURE_HEADER: sign(self._secret, ts, body),
        }
        ids = [r[0] for r in rows]
        try:
            response = await client.post(self.url, content=body, headers=headers)
            if response.status_code != 200:
                raise httpx.HTTPStatusError(
                    f"publisher answered {response.status_code}",
                    request=response.request,
                    response=response,
                )
            ack = response.json()
            acked = set(ack.get("accepted", [])) | set(ack.get("duplicates", []))
        except (httpx.HTTPError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
            await asyncio.to_thread(self._mark, [], error, ids)
            self.failures += 1
            log.warning("event=outbox_send_failed items=%d error=%r", len(ids), error)
            return 0
        sent = [i for i in ids if i in acked]
        await asyncio.to_thread(self._mark, sent, None if sent else "not acknowledged", ids)
        self.failures = 0 if sent else self.failures + 1
        log.info("event=outbox_sent items=%d", len(sent))
        return len(sent)

    def backoff(self) -> float:
        """Seconds to wait after `failures` consecutive failures (0 when healthy)."""
        if self.failures == 0:
            return 0.0
        delay = min(self.max_backoff, self.base_backoff * 2 ** (self.failures - 1))
        return delay * random.uniform(0.8, 1.2)

    async def run(self) -> None:
        """Send until `stop()`; idle polls every `poll_interval`, failures back off."""
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            while not self._stop.is_set():
                sent = await self.send_once(client)
                if sent == self.batch_size:
                    continue  # more may be waiting
                wait = self.backoff() or self.poll_interval
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=wait)
            await self.send_once(client)  # one last push of what the final session queued

    def stop(self) -> None:
        """Ask `run` to return after the current batch."""
        self._stop.set()
