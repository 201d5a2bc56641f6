"""Publisher settings: a TOML file of its own (it runs on another host), then env secrets.

```toml
[publisher]
db = "publisher.sqlite"     # relative to the data dir
host = "127.0.0.1"
port = 8787
replay_window_s = 300        # ingest timestamps older/newer than this are refused
rate_per_minute = 120        # per API key
max_attempts = 8             # delivery attempts per subscriber, item and channel

[tiers.free]
delay_minutes = 1440
end_of_day = true
[tiers.pro]
delay_minutes = 15
weights = true
[tiers.premium]
delay_minutes = 0
weights = true
rationale = true

[channels]
discord_api = "https://discord.com/api"
telegram_api = "https://api.telegram.org"
smtp_host = "localhost"
smtp_port = 25
email_from = "signals@qgtm.local"
discord_public_key = ""      # hex Ed25519 key of the Discord application
```
Secrets come from the environment or keyring only: QGTM_PUBLISH_SECRET (ingest HMAC),
QGTM_TELEGRAM_BOT_TOKEN, QGTM_TELEGRAM_WEBHOOK_SECRET.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from qgtm.core.secrets import read_secret
from qgtm.publish.tiers import DEFAULT_TIERS, Tier


class SettingsError(ValueError):
    """The publisher configuration is invalid; the message names the key."""


@dataclass(frozen=True, slots=True)
class ChannelSettings:
    """Where deliveries go; base URLs are settings so tests point them at loopback."""

    discord_api: str = "https://discord.com/api"
    telegram_api: str = "https://api.telegram.org"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    email_from: str = "signals@qgtm.local"
    discord_public_key: str = ""


@dataclass(frozen=True, slots=True)
class PublisherSettings:
    """Everything the publisher needs except secrets."""

    db: Path = Path("publisher.sqlite")
    host: str = "127.0.0.1"
    port: int = 8787
    replay_window_s: float = 300.0
    rate_per_minute: int = 120
    max_attempts: int = 8
    poll_interval: float = 0.2
    tiers: dict[str, Tier] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    channels: ChannelSettings = field(default_factory=ChannelSettings)


def _tier(name: str, raw: dict[str, Any]) -> Tier:
    unknown = set(raw) - {"delay_minutes", "end_of_day", "weights", "rationale"}
    if unknown:
        raise SettingsError(f"unknown key(s) in [tiers.{name}]: {', '.join(sorted(unknown))}")
    try:
        delay = float(raw.get("delay_minutes", 0))
    except (TypeError, ValueError):
        raise SettingsError(f"[tiers.{name}] delay_minutes must be a number") from None
    if delay < 0:
        raise SettingsError(f"[tiers.{name}] delay_minutes must be >= 0")
    return Tier(
        name,
        timedelta(minutes=delay),
        end_of_day=bool(raw.get("end_of_day", False)),
        show_weights=bool(raw.get("weights", False)),
        show_rationale=bool(raw.get("rationale", False)),
    )


def load_settings(path: Path | None, data_dir: Path) -> PublisherSettings:
    """Defaults overlaid by the TOML file at `path` (if given); db resolved under data_dir."""
    raw: dict[str, Any] = {}
    if path is not None:
        if not path.exists():
            raise SettingsError(f"publisher config not found: {path}")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
    unknown = set(raw) - {"publisher", "tiers", "channels"}
    if unknown:
        raise SettingsError(f"unknown publisher config section(s): {', '.join(sorted(unknown))}")
    pub = dict(raw.get("publisher", {}))
    known = {"db", "host", "port", "replay_window_s", "rate_per_minute", "max_attempts"}
    if set(pub) - known:
        raise SettingsError(f"unknown key(s) in [publisher]: {', '.join(sorted(set(pub) - known))}")
    tiers = dict(DEFAULT_TIERS)
    if "tiers" in raw:
        tiers = {name: _tier(name, dict(t)) for name, t in raw["tiers"].items()}
    try:
        channels = ChannelSettings(**raw.get("channels", {}))
    except TypeError as exc:
        raise SettingsError(f"[channels]: {exc}") from None
    db = Path(pub.pop("db", "publisher.sqlite"))
    return PublisherSettings(
        db=db if db.is_absolute() else data_dir / db,
        tiers=tiers,
        channels=channels,
        **{k: type(getattr(PublisherSettings(), k))(v) for k, v in pub.items()},
    )


def env_secret(name: str) -> str:
    """A secret from the environment, else keyring ("qgtm", name lower-cased); "" if none."""
    return read_secret(name.lower(), name)
