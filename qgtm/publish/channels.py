"""Delivery channels: Discord webhooks, the Telegram Bot API and SMTP email.

Each `send` returns None on success or raises `DeliveryError` with an optional
`retry_after` (seconds) the remote asked for (Discord and Telegram 429 answers).
Wire formats:
  Discord  POST {api}/webhooks/{id}/{token}?wait=true  JSON {"content", "embeds": [...]};
           429 body {"message", "retry_after": <seconds float>, "global": bool}.
  Telegram POST {api}/bot<token>/sendMessage  JSON {"chat_id", "text"};
           answer {"ok": true, "result": Message} or {"ok": false, "error_code",
           "description", "parameters": {"retry_after": <seconds int>}}.
  Email    smtplib SMTP to smtp_host:smtp_port, one message per delivery.
"""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from typing import Any

import httpx

from qgtm.publish.settings import ChannelSettings
from qgtm.publish.tiers import Tier


class DeliveryError(RuntimeError):
    """A delivery attempt failed; `retry_after` is the remote's requested wait, if any."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def signal_text(view: dict[str, Any]) -> str:
    """One plain-text line per signal, showing only the fields of the tier's view."""
    text = f"QGTM signal {view['symbol']} {view['direction']}"
    if "weight" in view:
        text += f" target {view['weight']:+.2%} (was {view['previous_weight']:+.2%})"
    if "rationale" in view:
        text += f"\n{view['rationale']}"
    return text + f"\nid {view['id']} · issued {view['issued_at']}"


def alert_text(payload: dict[str, Any]) -> str:
    """An owner alert as text."""
    return f"QGTM ALERT [{payload['source']}] {payload['text']} ({payload['at']})"


def render(kind: str, tier: Tier | None, item_id: str, issued_at: str, payload: dict) -> str:
    """The message text a subscriber (or the owner, for alerts) receives."""
    from datetime import datetime

    if kind == "alert" or tier is None:
        return alert_text(payload)
    return signal_text(tier.view(item_id, datetime.fromisoformat(issued_at), payload))


class Channels:
    """Sends one message on one channel, against configurable base URLs."""

    def __init__(
        self, settings: ChannelSettings, client: httpx.AsyncClient, telegram_token: str = ""
    ) -> None:
        self.settings = settings
        self.client = client
        self._telegram_token = telegram_token

    async def send(self, channel: str, address: str, text: str) -> None:
        """Deliver `text` to `address` (webhook 'id/token', chat id or email address)."""
        if channel == "discord":
            await self._discord(address, text)
        elif channel == "telegram":
            await self._telegram(address, text)
        elif channel == "email":
            await asyncio.to_thread(self._email, address, text)
        else:
            raise DeliveryError(f"unknown channel {channel}")

    async def _discord(self, webhook: str, text: str) -> None:
        url = f"{self.settings.discord_api.rstrip('/')}/webhooks/{webhook}"
        title, _, rest = text.partition("\n")
        body = {"content": title, "embeds": [{"title": title, "description": rest or title}]}
        try:
            response = await self.client.post(url, params={"wait": "true"}, json=body)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"discord: {type(exc).__name__}") from None
        if response.status_code == 429:
            retry = float(response.json().get("retry_after", 1.0))
            raise DeliveryError("discord: rate limited", retry_after=retry)
        if response.status_code not in (200, 204):
            raise DeliveryError(f"discord: HTTP {response.status_code}")

    async def _telegram(self, chat_id: str, text: str) -> None:
        if not self._telegram_token:
            raise DeliveryError("telegram: no bot token configured")
        url = f"{self.settings.telegram_api.rstrip('/')}/bot{self._telegram_token}/sendMessage"
        try:
            response = await self.client.post(url, json={"chat_id": chat_id, "text": text})
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DeliveryError(f"telegram: {type(exc).__name__}") from None
        if answer.get("ok"):
            return
        retry = (answer.get("parameters") or {}).get("retry_after")
        code = answer.get("error_code", response.status_code)
        raise DeliveryError(
            f"telegram: {code} {answer.get('description', '')}",
            retry_after=None if retry is None else float(retry),
        )

    def _email(self, to: str, text: str) -> None:
        message = EmailMessage()
        message["From"] = self.settings.email_from
        message["To"] = to
        message["Subject"] = text.partition("\n")[0]
        message.set_content(text)
        try:
            with smtplib.SMTP(self.settings.smtp_host, self.settings.smtp_port, timeout=10) as s:
                s.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"email: {type(exc).__name__}") from None
