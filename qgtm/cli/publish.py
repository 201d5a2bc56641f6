"""`qgtm publish ...`: serve, add-subscriber, rotate-key, list, replay, status.

The publisher host runs these from the same package (`qgtm publish serve`); they import
`qgtm.cli`, `qgtm.core` and `qgtm.publish` only, never the engine
(tests/cli/test_startup.py proves it), so the parser lives with the others in
qgtm/cli/parser.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime

from qgtm.cli import CliError
from qgtm.cli.config import data_dir_of
from qgtm.core.publication import SecretMissingError, load_secret
from qgtm.publish.settings import PublisherSettings, SettingsError, env_secret, load_settings
from qgtm.publish.store import PublisherStore


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"not an ISO time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _serve(settings: PublisherSettings, host: str | None, port: int | None) -> int:
    import uvicorn

    from qgtm.publish.app import create_app
    from qgtm.publish.context import PublisherContext

    try:
        secret = load_secret()
    except SecretMissingError as exc:
        raise CliError(str(exc)) from None
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


def run(args: argparse.Namespace) -> int:
    """Dispatch one `qgtm publish` action."""
    try:
        settings = load_settings(args.publisher_config, data_dir_of(args))
    except SettingsError as exc:
        raise CliError(str(exc)) from None
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
            raise CliError(f"unknown tier {args.tier!r} (tiers: {known})")
        if store.conn.execute("SELECT 1 FROM subscribers WHERE name = ?", (args.name,)).fetchone():
            raise CliError(f"a subscriber named {args.name!r} already exists")
        sub, key = store.add_subscriber(
            args.name, args.tier, args.role, args.discord_webhook, args.telegram_chat_id, args.email
        )
        print(f"subscriber {sub.id} {sub.name} tier={sub.tier} role={sub.role}")
        print(f"api key (shown once, store it now): {key}")
        return 0
    if command == "rotate-key":
        key = store.rotate_key(args.subscriber_id)
        if key is None:
            raise CliError(f"no subscriber with id {args.subscriber_id}")
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
            raise CliError("--until is before --since")
        count = store.replay(since, until, args.subscriber)
        print(f"{count} deliveries queued again (the running service sends them)")
        return 0
    print(json.dumps(store.status(), indent=2, sort_keys=True))
    return 0
