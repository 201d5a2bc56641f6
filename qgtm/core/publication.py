"""The wire contract between the engine's outbox and the publisher service.

Both sides import only this module: the engine signs what it pushes, the publisher
verifies it. The signature is HMAC-SHA256 (RFC 2104) over ``f"{timestamp}."`` followed by
the raw request body, hex-encoded in ``X-QGTM-Signature: sha256=<hex>``, with the Unix
timestamp (seconds) in ``X-QGTM-Timestamp``. The publisher rejects timestamps outside its
replay window, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from enum import StrEnum

from qgtm.core.secrets import SERVICE, read_secret

SIGNATURE_HEADER = "X-QGTM-Signature"
TIMESTAMP_HEADER = "X-QGTM-Timestamp"
SECRET_ENV = "QGTM_PUBLISH_SECRET"
KEYRING_SERVICE = SERVICE
KEYRING_SECRET_NAME = "publish_secret"


class ItemKind(StrEnum):
    """What an outbox item is: a subscriber signal, or an alert for the owner only."""

    SIGNAL = "signal"
    ALERT = "alert"


class SecretMissingError(RuntimeError):
    """No shared publish secret in the environment or the keyring."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256(secret, ts + "." + body)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    window: float,
) -> str | None:
    """None if the request is authentic and fresh, else the reason it is not."""
    if not timestamp or not signature:
        return "missing signature or timestamp header"
    try:
        ts = int(timestamp)
    except ValueError:
        return "timestamp is not an integer"
    if abs(now - ts) > window:
        return "timestamp outside the replay window"
    if not hmac.compare_digest(sign(secret, ts, body), signature):
        return "bad signature"
    return None


def load_secret(environ: dict[str, str] | None = None) -> str:
    """The shared secret: $QGTM_PUBLISH_SECRET, else keyring ("qgtm", "publish_secret")."""
    env = os.environ if environ is None else environ
    secret = env.get(SECRET_ENV)
    if secret:
        return secret
    secret = read_secret(KEYRING_SECRET_NAME)
    if not secret:
        raise SecretMissingError(
            f"no publish secret: set {SECRET_ENV} or store it with "
            f"`keyring set {KEYRING_SERVICE} {KEYRING_SECRET_NAME}`"
        )
    return secret


def stable_id(*parts: object) -> str:
    """A deterministic 24-hex id from the parts that define an item (same parts, same id)."""
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:24]
