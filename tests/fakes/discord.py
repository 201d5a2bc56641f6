"""Fake Discord webhook API on loopback.

Speaks the real format: POST /webhooks/{webhook.id}/{webhook.token}[?wait=true] with a JSON
body holding `content` and/or `embeds`; answers 200 with a Message object when wait=true,
else 204; a rate limit is 429 with {"message", "retry_after", "global"}.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from tests.fakes.loopback import LoopbackServer


@dataclass
class DiscordMessage:
    """One message the fake accepted."""

    webhook_id: str
    token: str
    body: dict[str, Any]
    received_at: datetime | None


@dataclass
class FakeDiscord:
    """Records webhook messages; `rate_limit_next` answers that many requests with 429."""

    clock: Any = None
    rate_limit_next: int = 0
    retry_after: float = 0.05
    messages: list[DiscordMessage] = field(default_factory=list)
    rejected: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(10**17)
        self.server = LoopbackServer(handle=self.handle)
        self.url = self.server.url + "/api"

    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        parts = urlsplit(path)
        segments = parts.path.strip("/").split("/")
        if segments[:2] != ["api", "webhooks"] or len(segments) != 4:
            return 404, {"message": "404: Not Found", "code": 0}
        if not body.get("content") and not body.get("embeds"):
            return 400, {"message": "Cannot send an empty message", "code": 50006}
        with self._lock:
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                self.rejected += 1
                return 429, {
                    "message": "You are being rate limited.",
                    "retry_after": self.retry_after,
                    "global": False,
                }
            now = self.clock.now() if self.clock else None
            self.messages.append(DiscordMessage(segments[2], segments[3], body, now))
            message_id = str(next(self._ids))
        if "wait=true" not in parts.query:
            return 204, None
        return 200, {
            "id": message_id,
            "type": 0,
            "content": body.get("content", ""),
            "channel_id": "1",
            "webhook_id": segments[2],
            "embeds": body.get("embeds", []),
        }

    def __enter__(self) -> FakeDiscord:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)
