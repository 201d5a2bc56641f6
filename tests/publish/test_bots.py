"""Discord interactions (Ed25519-signed) and the Telegram webhook (secret token)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from qgtm.publish.app import create_app
from qgtm.publish.clock import ManualClock
from qgtm.publish.context import PublisherContext
from qgtm.publish.settings import ChannelSettings, PublisherSettings
from qgtm.publish.store import PublisherStore
from tests.publish.conftest import SECRET
from tests.publish.test_api import T0, signal_item

TG_SECRET = "tg-webhook-secret"


class Bots:
    def __init__(self, tmp_path: Path) -> None:
        self.signing_key = Ed25519PrivateKey.generate()
        public = self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.clock = ManualClock(T0)
        settings = PublisherSettings(
            db=tmp_path / "p.sqlite", channels=ChannelSettings(discord_public_key=public.hex())
        )
        self.store = PublisherStore(settings.db)
        ctx = PublisherContext(
            settings, self.store, SECRET, self.clock, telegram_webhook_secret=TG_SECRET
        )
        self.http = TestClient(create_app(ctx, run_dispatcher=False))
        self.store.ingest([signal_item()], settings.tiers, T0)

    def discord(self, interaction: dict, key: Ed25519PrivateKey | None = None) -> object:
        body = json.dumps(interaction).encode()
        ts = "1700000000"
        signature = (key or self.signing_key).sign(ts.encode() + body).hex()
        return self.http.post(
            "/discord/interactions",
            content=body,
            headers={"X-Signature-Ed25519": signature, "X-Signature-Timestamp": ts},
        )

    def telegram(self, text: str, chat_id: int = 99, secret: str = TG_SECRET) -> object:
        update = {
            "update_id": 1,
            "message": {
                "message_id": 5,
                "date": 0,
                "chat": {"id": chat_id, "type": "private"},
                "text": text,
            },
        }
        return self.http.post(
            "/telegram/webhook",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": secret},
        )


@pytest.fixture
def bots(tmp_path: Path) -> Bots:
    return Bots(tmp_path)


def command(name: str, user: str = "555", **options: str) -> dict:
    return {
        "type": 2,
        "id": "1",
        "application_id": "2",
        "token": "t",
        "member": {"user": {"id": user, "username": "trader"}},
        "data": {
            "id": "3",
            "name": name,
            "type": 1,
            "options": [{"name": k, "type": 3, "value": v} for k, v in options.items()],
        },
    }


def test_discord_ping_gets_pong(bots: Bots) -> None:
    r = bots.discord({"type": 1, "id": "1", "application_id": "2", "token": "t"})
    assert r.status_code == 200 and r.json() == {"type": 1}


def test_discord_rejects_a_bad_signature(bots: Bots) -> None:
    r = bots.discord({"type": 1}, key=Ed25519PrivateKey.generate())
    assert r.status_code == 401
    r = bots.http.post("/discord/interactions", content=b'{"type":1}')
    assert r.status_code == 401


def test_discord_subscribe_links_user_and_latest_respects_the_tier(bots: Bots) -> None:
    _, key = bots.store.add_subscriber("pro-user", "pro")
    r = bots.discord(command("latest"))
    assert "no free signals released yet" in r.json()["data"]["content"]
    r = bots.discord(command("subscribe", key=key))
    assert r.json()["data"]["content"] == "linked to pro-user (pro)"
    assert r.json()["type"] == 4 and r.json()["data"]["flags"] == 64
    assert "no pro signals" in bots.discord(command("latest")).json()["data"]["content"]
    bots.clock.advance(timedelta(minutes=15))
    content = bots.discord(command("latest")).json()["data"]["content"]
    assert "GLD LONG target +12.00%" in content and "tsmom" not in content
    status = bots.discord(command("status")).json()["data"]["content"]
    assert "tier pro" in status


def test_telegram_webhook_checks_the_secret_token(bots: Bots) -> None:
    assert bots.telegram("/status", secret="wrong").status_code == 401


def test_telegram_start_links_the_chat_and_latest_shows_released_signals(bots: Bots) -> None:
    _, key = bots.store.add_subscriber("tg-premium", "premium")
    answer = bots.telegram(f"/start {key}").json()
    assert answer["method"] == "sendMessage" and answer["chat_id"] == 99
    assert "linked to tg-premium" in answer["text"]
    assert bots.store.by_key(key).telegram_chat_id == "99"
    latest = bots.telegram("/latest").json()["text"]
    assert "GLD LONG" in latest and "tsmom: 12m return +9%" in latest
    assert "tier premium" in bots.telegram("/status").json()["text"]
    assert "/start" in bots.telegram("/start not-a-key", chat_id=7).json()["text"]
