"""`qgtm publish ...`: serve, add-subscriber, rotate-key, list, replay, status.

qgtm/cli/__init__.py only builds the parser group (`add_parser`) and calls `run(args)`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

from qgtm.core.publication import SecretMissingError, load_secret
from qgtm.publish.settings import PublisherSettings, SettingsError, env_secret, load_settings
from qgtm.publish.store import ROLES, PublisherStore


class PublishCliError(RuntimeError):
    """An expected mistake in a publish command (one line, exit 2)."""


def add_parser(sub: argparse._SubParsersAction, common) -> None:  # type: ignore[type-arg,no-untyped-def]
    """The `publish` subcommand group."""
    publish = sub.add_parser("publish", help="signal publisher: serve subscribers by tier")
    common(publish)
    publish.add_argument(
        "--publisher-config", type=Path, default=None, help="publisher TOML (tiers, channels)"
    )
    actions = publish.add_subparsers(dest="publish_command", metavar="action", required=True)
    serve = actions.add_parser("serve", help="run the publisher HTTP service (uvicorn)")
    serve.add_argument("--host", default=None, help="bind address (default from config)")
    serve.add_argument("--port", type=int, default=None, help="port (default from config)")
    add = actions.add_parser("add-subscriber", help="create a subscriber; prints its key once")
    add.add_argument("name")
    add.add_argument("--tier", required=True)
    add.add_argument("--role", choices=ROLES, default="subscriber")
    add.add_argument("--discord-webhook", default=None, metavar="ID/TOKEN")
    add.add_argument("--telegram-chat-id", default=None)
    add.add_argument("--email", default=None)
    rotate = actions.add_parser("rotate-key", help="replace a subscriber's key; prints it once")
    rotate.add_argument("subscriber_id", type=int)
    actions.add_parser("list", help="list subscribers (no keys)")
    replay = actions.add_parser("replay", help="re-deliver items issued in a time window")
    replay.add_argument("--since", required=True, help="ISO time, e.g. 2026-01-05T00:00+00:00")
    replay.add_argument("--until", default=None, help="ISO time (default: now)")
    replay.add_argument("--subscriber", type=int, default=None, help="only this subscriber id")
    actions.add_parser("status", help="items, subscribers by tier, deliveries by status")


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise PublishCliError(f"not an ISO time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _serve(settings: PublisherSettings, host: str | None, port: int | None) -> int:
    import uvicorn

    from qgtm.publish.app import PublisherContext, create_app

    try:
        secret = load_secret()
    except SecretMissingError as exc:
        raise PublishCliError(str(exc)) from None
    ctx = PublisherContext(
        settings=settings,
        store=PublisherStore(settings.db),
        secret=secret,
        telegram_token=env_secret("QGTM_TELEGRAM_BOT_TOKEN"),
        telegram_webhook_secret=env_secret("QGTM_TELEGRAM_WEBHOOK_SECRET"),
    )
    logging.basicConfig(stream=sys.stdout, level=logging.INFO)
    # httpx logs request URLs at INFO; Telegram and Discord URLs carry tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    uvicorn.run(create_app(ctx), host=host or settings.host, port=port or settings.port)
    return 0


def run(args: argparse.Namespace, data_dir: Path) -> int:
    """Dispatch one `qgtm publish` action."""
    try:
        settings = load_settings(args.publisher_config, data_dir)
    except SettingsError as exc:
        raise PublishCliError(str(exc)) from None
    if args.publish_command == "serve":
        return _serve(settings, args.host, args.port)
    store = PublisherStore(settings.db)
    try:
        return _offline(args, settings, store)
    finally:
        store.close()


def _offline(args: argparse.Namespace, settings: PublisherSettings, store: PublisherStore) -> int:
    command = args.publish_command
    if command == "add-subscriber":
        if args.tier not in settings.tiers:
            known = ", ".join(sorted(settings.tiers))
            raise PublishCliError(f"unknown tier {args.tier!r} (tiers: {known})")
        if store.conn.execute("SELECT 1 FROM subscribers WHERE name = ?", (args.name,)).fetchone():
            raise PublishCliError(f"a subscriber named {args.name!r} already exists")
        sub, key = store.add_subscriber(
            args.name, args.tier, args.role, args.discord_webhook, args.telegram_chat_id, args.email
        )
        print(f"subscriber {sub.id} {sub.name} tier={sub.tier} role={sub.role}")
        print(f"api key (shown once, store it now): {key}")
        return 0
    if command == "rotate-key":
        key = store.rotate_key(args.subscriber_id)
        if key is None:
            raise PublishCliError(f"no subscriber with id {args.subscriber_id}")
        print(f"new api key (shown once, the old one no longer works): {key}")
        return 0
    if command == "list":
        for sub in store.subscribers(limit=10**6):
            p = sub.public()
            channels = ",".join(p["channels"]) or "-"
            print(
                f"{sub.id:>6} {sub.name:<24} {sub.tier:<8} {sub.role:<10} {channels:<22} "
                f"{sub.key_prefix}…"
            )
        return 0
    if command == "replay":
        since = _time(args.since)
        until = _time(args.until) if args.until else datetime.now(UTC)
        if until < since:
            raise PublishCliError("--until is before --since")
        count = store.replay(since, until, args.subscriber)
        print(f"{count} deliveries queued again (the running service sends them)")
        return 0
    print(json.dumps(store.status(), indent=2, sort_keys=True))
    return 0
