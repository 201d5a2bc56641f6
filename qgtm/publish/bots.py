"""Chat-bot commands: Discord HTTP interactions and Telegram webhook updates.

Discord signs each interaction with Ed25519 over (X-Signature-Timestamp + raw body) using
the application's key; an unverifiable request gets 401 (Discord requires this). PING
(type 1) is answered with PONG (type 1); slash commands (type 2) with a channel message
(type 4, ephemeral flag 64). Telegram sends Update objects to the webhook with the
secret token header; we reply in the webhook answer ({"method": "sendMessage", ...}).
Both bots show only what the linked subscriber's tier has released; an unlinked user
sees the free tier.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from qgtm.publish.channels import signal_text

if TYPE_CHECKING:
    from qgtm.publish.context import PublisherContext
    from qgtm.publish.store import Subscriber

PING, APPLICATION_COMMAND = 1, 2
PONG, CHANNEL_MESSAGE = 1, 4
EPHEMERAL = 64
FALLBACK_TIER = "free"


def _latest(ctx: PublisherContext, sub: Subscriber | None) -> str:
    tier_name = sub.tier if sub else FALLBACK_TIER
    tier = ctx.settings.tiers.get(tier_name)
    if tier is None:
        return "no tier"
    rows = ctx.store.latest_released(tier_name, ctx.clock.now(), 5)
    if not rows:
        return f"no {tier_name} signals released yet"
    views = [tier.view(i, datetime.fromisoformat(iss), p) for _, i, iss, p in rows]
    return "\n\n".join(signal_text(v) for v in views)


def _status(ctx: PublisherContext, sub: Subscriber | None) -> str:
    if sub is None:
        return "not linked: use your API key to subscribe (Discord /subscribe, Telegram /start)"
    return f"subscriber {sub.name}, tier {sub.tier}, active {sub.active}"


def _verified(
    public_key_hex: str, signature: str | None, timestamp: str | None, body: bytes
) -> bool:
    if not public_key_hex or not signature or not timestamp:
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex))
        key.verify(bytes.fromhex(signature), timestamp.encode() + body)
    except (ValueError, InvalidSignature):
        return False
    return True


def discord_interaction(
    ctx: PublisherContext, body: bytes, signature: str | None, timestamp: str | None
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON answer) for one Discord interaction."""
    if not _verified(ctx.settings.channels.discord_public_key, signature, timestamp, body):
        return 401, {"error": "invalid request signature"}
    try:
        interaction = json.loads(body)
    except ValueError:
        return 400, {"error": "not JSON"}
    if interaction.get("type") == PING:
        return 200, {"type": PONG}
    if interaction.get("type") != APPLICATION_COMMAND:
        return 400, {"error": "unsupported interaction type"}
    user = (interaction.get("member") or {}).get("user") or interaction.get("user") or {}
    user_id = str(user.get("id", ""))
    data = interaction.get("data") or {}
    name = data.get("name")
    sub = ctx.store.by_column("discord_user_id", user_id) if user_id else None
    if name == "latest":
        content = _latest(ctx, sub)
    elif name == "status":
        content = _status(ctx, sub)
    elif name == "subscribe":
        options = {o.get("name"): o.get("value") for o in data.get("options") or []}
        key = str(options.get("key") or "")
        linked = ctx.store.link(key, "discord_user_id", user_id) if key and user_id else None
        content = f"linked to {linked.name} ({linked.tier})" if linked else "unknown API key"
    else:
        content = f"unknown command {name!r}"
    return 200, {"type": CHANNEL_MESSAGE, "data": {"content": content[:2000], "flags": EPHEMERAL}}


def telegram_update(ctx: PublisherContext, update: dict[str, Any]) -> dict[str, Any]:
    """The webhook answer for one Telegram Update (a sendMessage method call, or {})."""
    message = update.get("message") or {}
    chat_id = (message.get("chat") or {}).get("id")
    text = str(message.get("text") or "")
    if chat_id is None or not text.startswith("/"):
        return {}
    command, _, argument = text.partition(" ")
    command = command.split("@")[0]
    sub = ctx.store.by_column("telegram_chat_id", str(chat_id))
    if command == "/start":
        key = argument.strip()
        linked = ctx.store.link(key, "telegram_chat_id", str(chat_id)) if key else None
        reply = (
            f"linked to {linked.name} ({linked.tier}): signals will arrive here"
            if linked
            else "send /start <your API key> to receive your signals here"
        )
    elif command == "/latest":
        reply = _latest(ctx, sub)
    elif command == "/status":
        reply = _status(ctx, sub)
    else:
        reply = "commands: /start <key>, /latest, /status"
    return {"method": "sendMessage", "chat_id": chat_id, "text": reply[:4096]}
