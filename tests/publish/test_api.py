"""The publisher API: signed ingest, keys, roles, tiers in the feed, rate limits."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qgtm.core.publication import sign, stable_id
from qgtm.publish.app import create_app
from qgtm.publish.clock import ManualClock
from qgtm.publish.context import PublisherContext
from qgtm.publish.settings import PublisherSettings
from qgtm.publish.store import PublisherStore, hash_key
from tests.publish.conftest import SECRET

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a Monday, 10:00 New York


def signal_item(symbol: str = "GLD", issued: datetime = T0) -> dict:
    return {
        "id": stable_id("signal", symbol, issued.isoformat()),
        "kind": "signal",
        "issued_at": issued.isoformat(),
        "payload": {
            "symbol": symbol,
            "direction": "LONG",
            "weight": 0.12,
            "previous_weight": 0.0,
            "rationale": "tsmom: 12m return +9%",
            "decision_time": issued.isoformat(),
            "strategy_set": "tsmom",
        },
    }


def signed(items: list[dict], ts: int | None = None, secret: str = SECRET) -> dict:
    body = json.dumps({"items": items}).encode()
    ts = int(time.time()) if ts is None else ts
    return {
        "content": body,
        "headers": {
            "Content-Type": "application/json",
            "X-QGTM-Timestamp": str(ts),
            "X-QGTM-Signature": sign(secret, ts, body),
        },
    }


class World:
    def __init__(self, tmp_path: Path, rate: int = 120) -> None:
        self.clock = ManualClock(T0)
        self.settings = PublisherSettings(db=tmp_path / "p.sqlite", rate_per_minute=rate)
        self.store = PublisherStore(self.settings.db)
        self.ctx = PublisherContext(self.settings, self.store, SECRET, self.clock)
        self.http = TestClient(create_app(self.ctx, run_dispatcher=False))
        _, self.admin_key = self.store.add_subscriber("owner", "premium", role="admin")

    def key_for(self, tier: str) -> str:
        r = self.http.post(
            "/v1/subscribers",
            json={"name": f"sub-{tier}", "tier": tier},
            headers={"Authorization": f"Bearer {self.admin_key}"},
        )
        assert r.status_code == 201, r.text
        return r.json()["api_key"]

    def feed(self, key: str) -> list[dict]:
        r = self.http.get("/v1/feed", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_ingest_needs_a_valid_fresh_signature(world: World) -> None:
    item = [signal_item()]
    assert world.http.post("/v1/ingest", **signed(item, secret="wrong")).status_code == 401
    stale = int(time.time()) - 3600
    r = world.http.post("/v1/ingest", **signed(item, ts=stale))
    assert r.status_code == 401 and "replay window" in r.json()["detail"]
    assert world.http.post("/v1/ingest", content=b"{}").status_code == 401
    assert world.store.status()["items"] == {}


def test_ingest_is_idempotent_on_signal_id(world: World) -> None:
    item = [signal_item()]
    first = world.http.post("/v1/ingest", **signed(item)).json()
    again = world.http.post("/v1/ingest", **signed(item)).json()
    assert first == {"accepted": [item[0]["id"]], "duplicates": []}
    assert again == {"accepted": [], "duplicates": [item[0]["id"]]}
    assert world.store.status()["items"] == {"signal": 1}


def test_keys_are_stored_only_as_hashes(world: World) -> None:
    key = world.key_for("pro")
    dump = "\n".join(world.store.conn.iterdump())
    assert key not in dump and hash_key(key) in dump


def test_only_admins_manage_subscribers(world: World) -> None:
    key = world.key_for("pro")
    r = world.http.get("/v1/subscribers", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 403
    assert world.http.get("/v1/subscribers").status_code == 401
    r = world.http.get("/v1/subscribers", headers={"Authorization": f"Bearer {world.admin_key}"})
    assert {s["name"] for s in r.json()} == {"owner", "sub-pro"}
    assert all("api_key" not in s and "key_hash" not in s for s in r.json())


def test_rotated_key_replaces_the_old_one(world: World) -> None:
    old = world.key_for("pro")
    sub_id = world.store.by_key(old).id
    admin = {"Authorization": f"Bearer {world.admin_key}"}
    new = world.http.post(f"/v1/subscribers/{sub_id}/rotate-key", headers=admin).json()["api_key"]
    assert world.http.get("/v1/feed", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert world.feed(new) == []


def test_feed_releases_by_tier_and_shows_tier_fields(world: World) -> None:
    keys = {t: world.key_for(t) for t in ("free", "pro", "premium")}
    world.http.post("/v1/ingest", **signed([signal_item()]))
    premium = world.feed(keys["premium"])
    assert [s["symbol"] for s in premium] == ["GLD"]
    assert premium[0]["rationale"] and premium[0]["weight"] == 0.12
    assert world.feed(keys["pro"]) == [] and world.feed(keys["free"]) == []
    world.clock.advance(timedelta(minutes=14, seconds=59))
    assert world.feed(keys["pro"]) == []
    world.clock.advance(timedelta(seconds=1))
    pro = world.feed(keys["pro"])
    assert pro[0]["weight"] == 0.12 and "rationale" not in pro[0]
    # free: 24 h later (Tue 10:00 NY) then the next close, Tue 16:00 NY = 21:00 UTC
    world.clock.advance(timedelta(days=1, hours=5, minutes=59, seconds=59) - timedelta(minutes=15))
    assert world.feed(keys["free"]) == []
    world.clock.advance(timedelta(seconds=1))
    free = world.feed(keys["free"])
    assert world.clock.now() == datetime(2026, 3, 3, 21, 0, tzinfo=UTC)
    assert set(free[0]) == {"seq", "id", "symbol", "direction", "issued_at", "release_at", "tier"}


def test_alerts_never_reach_the_subscriber_feed(world: World) -> None:
    key = world.key_for("premium")
    alert = {
        "id": stable_id("alert", "x"),
        "kind": "alert",
        "issued_at": T0.isoformat(),
        "payload": {"source": "kill_tier", "text": "NORMAL -> WARN", "at": T0.isoformat()},
    }
    assert world.http.post("/v1/ingest", **signed([alert])).status_code == 200
    assert world.feed(key) == []


def test_server_sent_events_stream_released_signals(world: World) -> None:
    key = world.key_for("premium")
    world.http.post("/v1/ingest", **signed([signal_item("GLD"), signal_item("SLV")]))
    with world.http.stream(
        "GET", "/v1/feed/stream?max_events=2", headers={"Authorization": f"Bearer {key}"}
    ) as r:
        text = "".join(r.iter_text())
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert [e["symbol"] for e in events] == ["GLD", "SLV"]
    assert "event: signal" in text


def test_each_key_is_rate_limited(tmp_path: Path) -> None:
    world = World(tmp_path, rate=3)
    key = world.key_for("pro")
    codes = [
        world.http.get("/v1/feed", headers={"Authorization": f"Bearer {key}"}).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    # another key has its own bucket (the admin used one token above)
    r = world.http.get("/v1/subscribers", headers={"Authorization": f"Bearer {world.admin_key}"})
    assert r.status_code == 200
