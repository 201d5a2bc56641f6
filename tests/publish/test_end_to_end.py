"""Engine -> outbox -> publisher -> Discord, across a publisher outage, by tier and time."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from qgtm.core.config import Config, PublishConfig
from qgtm.engine.live.engine import TradingEngine
from qgtm.engine.outbox import OutboxSender, outbox_status
from qgtm.publish.store import PublisherStore
from tests.fakes.discord import FakeDiscord
from tests.publish.conftest import SECRET, make_settings


def _wait(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


async def _drain(sender: OutboxSender, db: Path, rounds: int = 200) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(rounds):
            await sender.send_once(client)
            if outbox_status(db).pending == 0:
                return
            await asyncio.sleep(0.05)
    raise AssertionError("outbox did not drain")


def test_every_subscriber_gets_each_signal_once_not_before_release(
    tmp_path: Path, short_config: Config, clock, publisher_factory
) -> None:
    with FakeDiscord(clock=clock) as discord:
        discord.rate_limit_next = 3  # 429 + retry_after must be honoured
        settings = make_settings(tmp_path, discord_api=discord.url)
        server = publisher_factory(settings)
        server.start()
        store = PublisherStore(settings.db)
        hooks = {}
        for tier in ("free", "pro", "premium"):
            for n in range(2):
                store.add_subscriber(
                    f"{tier}-{n}", tier, discord_webhook=f"{len(hooks) + 1}/tok{tier}{n}"
                )
                hooks[f"{len(hooks) + 1}"] = tier
        store.close()

        config = replace(short_config, publish=PublishConfig(url=server.url))
        engine = TradingEngine(config, tmp_path / "book")
        engine.outbox.clock = clock.now  # the engine issues on the same hand-moved clock
        db = engine.state.path
        sender = OutboxSender(db, server.url, SECRET, batch_size=7, base_backoff=0.01)

        # sessions while the publisher is up, then while it is down, then after restart
        for _ in range(3):
            engine.step()
        asyncio.run(_drain(sender, db))
        server.stop()
        for _ in range(4):
            engine.step()
        sent_before = outbox_status(db).sent
        asyncio.run(_failing_round(sender))
        status = outbox_status(db)
        assert status.pending > 0 and status.last_error is not None
        assert status.sent == sent_before
        server.start()
        asyncio.run(_drain(sender, db))
        engine.close()

        ids = [r[0] for r in _outbox_ids(db, "signal")]
        assert ids, "the engine published no signal"

        def received(tier: str) -> Counter:
            return Counter(
                (m.webhook_id, m.body["embeds"][0]["description"].rsplit("id ", 1)[1].split(" ")[0])
                for m in discord.messages
                if hooks[m.webhook_id] == tier
            )

        # t0: premium only
        _wait(lambda: sum(received("premium").values()) == 2 * len(ids))
        assert not received("pro") and not received("free")
        clock.advance(timedelta(minutes=14))
        time.sleep(0.3)
        assert not received("pro")
        clock.advance(timedelta(minutes=1, seconds=1))
        _wait(lambda: sum(received("pro").values()) == 2 * len(ids))
        assert not received("free")
        clock.advance(timedelta(hours=49))  # past 24 h and the next New York close
        _wait(lambda: sum(received("free").values()) == 2 * len(ids))
        time.sleep(0.3)  # nothing more arrives

        for tier in ("free", "pro", "premium"):
            counts = received(tier)
            assert set(counts.values()) == {1}, f"{tier}: a signal arrived twice"
            assert {i for _, i in counts} == set(ids)
        assert discord.rejected == 3
        server.stop()
        server.start()
        ctx = server.ctx
        assert ctx is not None
        for m in discord.messages:
            item = m.body["embeds"][0]["description"].rsplit("id ", 1)[1].split(" ")[0]
            tier = settings.tiers[hooks[m.webhook_id]]
            issued = ctx.store.conn.execute(
                "SELECT issued_at FROM items WHERE id = ?", (item,)
            ).fetchone()[0]
            from datetime import datetime

            assert m.received_at >= tier.release_at(datetime.fromisoformat(issued))


async def _failing_round(sender: OutboxSender) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=2) as client:
        assert await sender.send_once(client) == 0
    assert sender.failures == 1 and sender.backoff() > 0


def _outbox_ids(db: Path, kind: str) -> list[tuple[str]]:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id FROM outbox WHERE kind = ?", (kind,)).fetchall()
    finally:
        conn.close()


def test_engine_run_starts_the_sender_and_flushes_on_stop(
    tmp_path: Path, short_config: Config, publisher_factory, monkeypatch
) -> None:
    monkeypatch.setenv("QGTM_PUBLISH_SECRET", SECRET)
    server = publisher_factory(make_settings(tmp_path))
    server.start()
    config = replace(short_config, publish=PublishConfig(url=server.url))
    engine = TradingEngine(config, tmp_path / "book")
    assert asyncio.run(engine.run(max_sessions=3)) == 3
    status = outbox_status(engine.state.path)
    engine.close()
    assert status.pending == 0 and status.sent > 0
    assert server.ctx is not None
    assert server.ctx.store.status()["items"] == {"signal": status.sent}
