"""Fake Telegram Bot API on loopback.

POST /bot<token>/sendMessage with JSON {"chat_id", "text"}; answers {"ok": true,
"result": Message}, or {"ok": false, "error_code": 401, "description": "Unauthorized"}
for a wrong token, or a 429 {"ok": false, "error_code": 429, "description": "Too Many
Requests: retry after N", "parameters": {"retry_after": N}}.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.loopback import LoopbackServer


@dataclass
class FakeTelegram:
    """Records sendMessage calls per chat."""

    token: str
    rate_limit_next: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.server = LoopbackServer(handle=self.handle)
        self.url = self.server.url

    def handle(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        prefix, _, api_method = path.strip("/").partition("/")
        if prefix != f"bot{self.token}":
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if api_method != "sendMessage":
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        if "chat_id" not in body or not body.get("text"):
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message text is empty",
            }
        with self._lock:
            if self.rate_limit_next > 0:
                self.rate_limit_next -= 1
                return 429, {
                    "ok": False,
                    "error_code": 429,
                    "description": "Too Many Requests: retry after 0",
                    "parameters": {"retry_after": 0},
                }
            self.sent.append(body)
            message_id = next(self._ids)
        return 200, {
            "ok": True,
            "result": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": int(body["chat_id"]), "type": "private"},
                "text": body["text"],
            },
        }

    def __enter__(self) -> FakeTelegram:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)
