"""Delivery over each channel against loopback fakes speaking the real APIs."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from qgtm.publish.channels import Channels
from qgtm.publish.clock import ManualClock
from qgtm.publish.delivery import Dispatcher
from qgtm.publish.settings import ChannelSettings, PublisherSettings
from qgtm.publish.store import PublisherStore
from tests.fakes.discord import FakeDiscord
from tests.fakes.smtp import FakeSMTP
from tests.fakes.telegram import FakeTelegram
from tests.publish.test_api import T0, signal_item

TOKEN = "123456:ABC-test-token"


def run_passes(dispatcher: Dispatcher, channels_settings: ChannelSettings, n: int = 1) -> int:
    async def go() -> int:
        async with httpx.AsyncClient(timeout=5) as client:
            channels = Channels(channels_settings, client, TOKEN)
            return sum([await dispatcher.run_pass(channels) for _ in range(n)])

    return asyncio.run(go())


def world(
    tmp_path: Path, channels: ChannelSettings
) -> tuple[PublisherStore, Dispatcher, ManualClock]:
    clock = ManualClock(T0)
    settings = PublisherSettings(db=tmp_path / "p.sqlite", channels=channels)
    store = PublisherStore(settings.db)
    return store, Dispatcher(store, settings, clock, telegram_token=TOKEN), clock


def test_telegram_subscribers_get_send_message_once_after_release(tmp_path: Path) -> None:
    with FakeTelegram(TOKEN) as telegram:
        channels = ChannelSettings(telegram_api=telegram.url)
        store, dispatcher, clock = world(tmp_path, channels)
        store.add_subscriber("tg-pro", "pro", telegram_chat_id="4242")
        store.ingest([signal_item()], dispatcher.settings.tiers, T0)
        assert run_passes(dispatcher, channels) == 0 and telegram.sent == []
        clock.advance(timedelta(minutes=15))
        assert run_passes(dispatcher, channels, 3) == 1
        assert len(telegram.sent) == 1 and telegram.sent[0]["chat_id"] == "4242"
        assert "GLD LONG target +12.00%" in telegram.sent[0]["text"]
        assert "tsmom" not in telegram.sent[0]["text"]  # pro sees no rationale


def test_telegram_429_is_retried_and_recorded(tmp_path: Path) -> None:
    with FakeTelegram(TOKEN, rate_limit_next=1) as telegram:
        channels = ChannelSettings(telegram_api=telegram.url)
        store, dispatcher, _ = world(tmp_path, channels)
        store.add_subscriber("tg", "premium", telegram_chat_id="7")
        store.ingest([signal_item()], dispatcher.settings.tiers, T0)
        assert run_passes(dispatcher, channels) == 0
        assert "429" in store.status()["last_error"]
        assert run_passes(dispatcher, channels) == 1  # retry_after 0: due at once
        assert len(telegram.sent) == 1
        row = store.conn.execute("SELECT status, attempts FROM deliveries").fetchone()
        assert row == ("delivered", 2)


def test_email_goes_through_smtp(tmp_path: Path) -> None:
    with FakeSMTP() as smtp:
        channels = ChannelSettings(smtp_host="127.0.0.1", smtp_port=smtp.port)
        store, dispatcher, _ = world(tmp_path, channels)
        store.add_subscriber("mail", "premium", email="trader@example.com")
        store.ingest([signal_item("SLV")], dispatcher.settings.tiers, T0)
        assert run_passes(dispatcher, channels, 2) == 1
        assert len(smtp.messages) == 1
        message = smtp.messages[0]
        assert message["To"] == "trader@example.com"
        assert message["Subject"].startswith("QGTM signal SLV LONG")
        assert "tsmom: 12m return +9%" in message.get_payload()


def test_discord_webhook_honours_retry_after(tmp_path: Path) -> None:
    with FakeDiscord(rate_limit_next=1, retry_after=0.5) as discord:
        channels = ChannelSettings(discord_api=discord.url)
        store, dispatcher, _ = world(tmp_path, channels)
        store.add_subscriber("dc", "premium", discord_webhook="111/tok")
        store.ingest([signal_item()], dispatcher.settings.tiers, T0)
        assert run_passes(dispatcher, channels) == 0
        retry_at = store.conn.execute("SELECT next_try FROM deliveries").fetchone()[0]
        assert retry_at > time.time() + 0.3
        assert run_passes(dispatcher, channels) == 0  # retry_after (0.5 s) not yet over
        time.sleep(max(0.0, retry_at - time.time()) + 0.01)
        assert run_passes(dispatcher, channels) == 1
        assert [(m.webhook_id, m.token) for m in discord.messages] == [("111", "tok")]
        assert discord.messages[0].body["embeds"][0]["title"].startswith("QGTM signal GLD")


def test_owner_alerts_go_only_to_admins(tmp_path: Path) -> None:
    with FakeDiscord() as discord:
        channels = ChannelSettings(discord_api=discord.url)
        store, dispatcher, _ = world(tmp_path, channels)
        store.add_subscriber("owner", "premium", role="admin", discord_webhook="1/owner")
        store.add_subscriber("customer", "premium", discord_webhook="2/cust")
        alert = {
            "id": "ab" * 12,
            "kind": "alert",
            "issued_at": T0.isoformat(),
            "payload": {"source": "kill_tier", "text": "NORMAL -> WARN", "at": "2026-03-02"},
        }
        store.ingest([alert], dispatcher.settings.tiers, T0)
        assert run_passes(dispatcher, channels, 2) == 1
        assert [m.webhook_id for m in discord.messages] == ["1"]
        assert "ALERT [kill_tier] NORMAL -> WARN" in discord.messages[0].body["content"]


def test_failed_delivery_gives_up_after_max_attempts(tmp_path: Path) -> None:
    channels = ChannelSettings(telegram_api="http://127.0.0.1:9")  # nothing listens
    store, dispatcher, _ = world(tmp_path, channels)
    dispatcher.settings = PublisherSettings(db=store.path, channels=channels, max_attempts=1)
    store.add_subscriber("tg", "premium", telegram_chat_id="7")
    store.ingest([signal_item()], dispatcher.settings.tiers, T0)
    assert run_passes(dispatcher, channels) == 0
    assert store.status()["deliveries"] == {"failed": 1}


def test_replay_redelivers_a_window(tmp_path: Path) -> None:
    with FakeDiscord() as discord:
        channels = ChannelSettings(discord_api=discord.url)
        store, dispatcher, _ = world(tmp_path, channels)
        store.add_subscriber("dc", "premium", discord_webhook="5/t")
        store.ingest([signal_item()], dispatcher.settings.tiers, T0)
        run_passes(dispatcher, channels, 2)
        assert store.replay(T0 + timedelta(hours=1), T0 + timedelta(hours=2)) == 0
        assert store.replay(T0 - timedelta(hours=1), datetime.now(UTC)) == 1
        run_passes(dispatcher, channels, 2)
        assert len(discord.messages) == 2
