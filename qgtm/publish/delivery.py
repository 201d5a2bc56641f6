"""The dispatcher: turns due releases into per-subscriber deliveries and sends them.

Each pass: (1) `materialize` creates one pending delivery row per (subscriber, item,
channel) whose tier's release time has come on the publisher clock — nothing is queued
earlier, so nothing can go out early; (2) the pending rows are sent concurrently; a
success marks the row delivered, a failure schedules a retry with capped exponential
backoff (or the remote's retry_after), giving up after `max_attempts`.
A crash between a send and its record re-sends that one message on restart
(at-least-once for that window); otherwise each row is sent once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx

from qgtm.publish.channels import Channels, DeliveryError, render
from qgtm.publish.clock import SystemClock
from qgtm.publish.settings import PublisherSettings
from qgtm.publish.store import PendingDelivery, PublisherStore

log = logging.getLogger(__name__)


class Dispatcher:
    """Runs delivery passes until stopped; `wake()` starts a pass at once (after ingest)."""

    def __init__(
        self,
        store: PublisherStore,
        settings: PublisherSettings,
        clock: object | None = None,
        telegram_token: str = "",
        concurrency: int = 64,
        batch: int = 2000,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock or SystemClock()
        self.telegram_token = telegram_token
        self.concurrency = concurrency
        self.batch = batch
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()

    def wake(self) -> None:
        """Start the next pass now."""
        self._wake.set()

    def stop(self) -> None:
        """Finish the current pass and return."""
        self._stop.set()
        self._wake.set()

    def _backoff(self, attempts: int) -> float:
        return min(300.0, 0.5 * 2**attempts)

    async def run_pass(self, channels: Channels) -> int:
        """Materialize due releases and send one batch; returns deliveries made."""
        now = self.clock.now()  # type: ignore[attr-defined]
        await asyncio.to_thread(self.store.materialize, now)
        pending = await asyncio.to_thread(self.store.pending, self.batch)
        if not pending:
            return 0
        semaphore = asyncio.Semaphore(self.concurrency)
        delivered: list[tuple[int, str, str]] = []
        failed: list[tuple[int, str, str, str, float, bool]] = []

        async def attempt(d: PendingDelivery) -> None:
            tier = self.settings.tiers.get(d.tier)
            text = render(d.kind, tier, d.item_id, d.issued_at, d.payload)
            async with semaphore:
                try:
                    await channels.send(d.channel, d.address, text)
                except DeliveryError as exc:
                    wait = exc.retry_after
                    if wait is None:
                        wait = self._backoff(d.attempts)
                    give_up = d.attempts + 1 >= self.settings.max_attempts
                    key = (d.subscriber_id, d.item_id, d.channel)
                    failed.append((*key, str(exc), time.time() + wait, give_up))
                    return
            delivered.append((d.subscriber_id, d.item_id, d.channel))

        await asyncio.gather(*(attempt(d) for d in pending))
        await asyncio.to_thread(self.store.record_results, delivered, failed, self.clock.now())  # type: ignore[attr-defined]
        if failed:
            log.warning("event=delivery_failed count=%d last_error=%r", len(failed), failed[-1][3])
        return len(delivered)

    async def run(self) -> None:
        """Passes until `stop()`: immediately while busy, else every poll interval."""
        limits = httpx.Limits(max_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:
            channels = Channels(self.settings.channels, client, self.telegram_token)
            while not self._stop.is_set():
                try:
                    done = await self.run_pass(channels)
                except Exception:  # a bad pass must not stop deliveries for good
                    log.exception("event=dispatch_pass_failed")
                    done = 0
                if done:
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_interval)
