"""What the publisher's endpoints and bots share: settings, store, clock and delivery.

Its own module so the HTTP app and the chat bots both depend on it, not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qgtm.publish.clock import SystemClock
from qgtm.publish.delivery import Dispatcher
from qgtm.publish.settings import PublisherSettings
from qgtm.publish.store import PublisherStore


@dataclass
class PublisherContext:
    """What the endpoints share."""

    settings: PublisherSettings
    store: PublisherStore
    secret: str
    clock: Any = field(default_factory=SystemClock)
    telegram_token: str = ""
    telegram_webhook_secret: str = ""
    dispatcher: Dispatcher | None = None
