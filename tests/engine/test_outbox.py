"""The engine's publish outbox: same transaction, stable ids, sent only on acknowledgement."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from qgtm.core.config import Config
from qgtm.core.enums import SignalDirection
from qgtm.core.publication import sign, verify
from qgtm.core.types import Signal
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.outbox import Outbox, OutboxSender, outbox_status
from qgtm.engine.state import StateStore

AT = datetime(2024, 3, 1, 20, 30, tzinfo=UTC)


def _rows(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, kind, payload, status FROM outbox ORDER BY seq").fetchall()
    finally:
        conn.close()


def test_target_changes_become_signals_with_direction_weight_and_rationale(tmp_path: Path) -> None:
    state = StateStore(tmp_path)
    outbox = Outbox(state.conn)
    sig = Signal("GLD", SignalDirection.LONG, 0.1, 0.8, "tsmom", AT.date(), "12m return +9%")
    with state.transaction():
        n = outbox.enqueue_targets({"GLD": 0.12, "USO": 0.001}, [sig], {}, AT, "tsmom")
    assert n == 1  # USO moved less than MIN_WEIGHT_CHANGE
    payload = json.loads(_rows(state.path)[0][2])
    assert payload["direction"] == "LONG" and payload["weight"] == 0.12
    assert payload["rationale"] == "tsmom: 12m return +9%"
    with state.transaction():  # next rebalance: GLD exits
        outbox.enqueue_targets({}, [], {}, AT.replace(day=2), "tsmom")
    last = json.loads(_rows(state.path)[-1][2])
    assert (last["direction"], last["weight"], last["previous_weight"]) == ("FLAT", 0.0, 0.12)


def test_items_roll_back_with_the_session_transaction(tmp_path: Path) -> None:
    state = StateStore(tmp_path)
    outbox = Outbox(state.conn)
    with pytest.raises(RuntimeError), state.transaction():
        outbox.enqueue_targets({"GLD": 0.1}, [], {}, AT, "tsmom")
        outbox.enqueue_alert("kill_tier", "NORMAL -> WARN", AT)
        raise RuntimeError("crash mid-session")
    assert _rows(state.path) == []


def test_the_same_decision_never_makes_a_second_item(tmp_path: Path) -> None:
    state = StateStore(tmp_path)
    outbox = Outbox(state.conn)
    with state.transaction():
        assert outbox.enqueue_alert("kill_tier", "NORMAL -> WARN", AT)
        assert not outbox.enqueue_alert("kill_tier", "NORMAL -> WARN", AT)
    assert len(_rows(state.path)) == 1


def test_engine_sessions_fill_the_outbox_and_restart_adds_no_repeats(
    tmp_path: Path, short_config: Config
) -> None:
    engine = TradingEngine(short_config, tmp_path)
    for _ in range(3):
        engine.step()
    before = _rows(engine.state.path)
    engine.close()
    assert before and all(r[1] == "signal" for r in before)
    engine = TradingEngine(short_config, tmp_path)  # restart resumes at the next session
    engine.step()
    after = _rows(engine.state.path)
    engine.close()
    assert after[: len(before)] == before
    assert len({r[0] for r in after}) == len(after)


def test_signature_verifies_and_rejects_tampering_and_stale_timestamps() -> None:
    body = b'{"items":[]}'
    good = sign("s3cret", 1000, body)
    assert verify("s3cret", "1000", good, body, now=1010, window=300) is None
    assert verify("s3cret", "1000", good, body + b" ", now=1010, window=300) == "bad signature"
    assert verify("other", "1000", good, body, now=1010, window=300) == "bad signature"
    assert "replay window" in verify("s3cret", "1000", good, body, now=1400, window=300)


def _serve(handler) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def test_sender_marks_sent_only_what_the_publisher_acknowledged(tmp_path: Path) -> None:
    state = StateStore(tmp_path)
    outbox = Outbox(state.conn)
    with state.transaction():
        outbox.enqueue_targets({"GLD": 0.1, "SLV": -0.1}, [], {}, AT, "tsmom")
    ids = [r[0] for r in _rows(state.path)]
    sender = OutboxSender(state.path, "http://publisher", "s3cret")
    seen: list[httpx.Request] = []

    def partial_ack(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"accepted": [ids[0]], "duplicates": []})

    async def go(handler) -> int:  # type: ignore[no-untyped-def]
        async with _serve(handler) as client:
            return await sender.send_once(client)

    assert asyncio.run(go(partial_ack)) == 1
    ts = seen[0].headers["X-QGTM-Timestamp"]
    assert (
        verify(
            "s3cret",
            ts,
            seen[0].headers["X-QGTM-Signature"],
            seen[0].content,
            now=float(ts),
            window=1,
        )
        is None
    )
    assert outbox_status(state.path).pending == 1
    assert asyncio.run(go(lambda r: httpx.Response(503))) == 0
    status = outbox_status(state.path)
    assert status.pending == 1 and "503" in (status.last_error or "")
    dup = httpx.Response(200, json={"accepted": [], "duplicates": [ids[1]]})
    assert asyncio.run(go(lambda r: dup)) == 1
    assert outbox_status(state.path).pending == 0
    assert "s3cret" not in repr(sender)


def test_backoff_doubles_and_is_capped() -> None:
    sender = OutboxSender(Path("x"), "http://p", "s", base_backoff=1.0, max_backoff=8.0)
    delays = []
    for failures in (1, 2, 3, 6):
        sender.failures = failures
        delays.append(sender.backoff())
    assert 0.8 <= delays[0] <= 1.2 and 1.6 <= delays[1] <= 2.4 and 3.2 <= delays[2] <= 4.8
    assert 6.4 <= delays[3] <= 9.6


def test_kill_tier_changes_are_queued_as_owner_alerts(tmp_path: Path, short_config: Config) -> None:
    from dataclasses import replace

    from qgtm.core.types import RiskLimits

    config = replace(short_config, risk=RiskLimits(daily_loss_limit=1e-6))
    engine = TradingEngine(config, tmp_path)
    for _ in range(10):
        engine.step()
    tier = engine.kill_tier
    engine.close()
    alerts = [json.loads(r[2]) for r in _rows(engine.state.path) if r[1] == "alert"]
    assert tier.name != "NORMAL" and alerts
    assert alerts[-1]["source"] == "risk" and tier.name in alerts[-1]["text"]


def test_alerts_raised_between_sessions_reach_the_outbox_with_the_next_session(
    tmp_path: Path, short_config: Config
) -> None:
    engine = TradingEngine(short_config, tmp_path)
    engine.step()
    engine.alert("RECON QTY_MISMATCH GLD: review", source="recon")
    before = [r for r in _rows(engine.state.path) if r[1] == "alert"]
    engine.step()
    after = [json.loads(r[2]) for r in _rows(engine.state.path) if r[1] == "alert"]
    engine.close()
    assert before == []
    assert [(a["source"], a["text"]) for a in after] == [
        ("recon", "RECON QTY_MISMATCH GLD: review")
    ]


def test_an_emergency_flatten_alert_is_queued_at_once(tmp_path: Path, short_config: Config):
    engine = TradingEngine(short_config, tmp_path)
    for _ in range(3):
        engine.step()
    engine.emergency_flatten("heartbeat 90 s old", actor="watchdog")
    sources = [json.loads(r[2])["source"] for r in _rows(engine.state.path) if r[1] == "alert"]
    engine.close()
    assert "watchdog" in sources and "risk" in sources
