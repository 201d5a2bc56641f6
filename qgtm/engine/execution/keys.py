"""Broker credentials: from the OS keyring (service "qgtm"), or env vars for CI.

Never from the config file, never logged. `qgtm keys set alpaca` stores them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import keyring

SERVICE = "qgtm"
ALPACA_NAMES = ("alpaca_key_id", "alpaca_secret_key")
ALPACA_ENV = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY")  # Alpaca's own variable names


class MissingCredentialsError(LookupError):
    """No credentials for a broker in the keyring or the environment."""


def alpaca_credentials(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(key id, secret key): env APCA_API_KEY_ID/APCA_API_SECRET_KEY, else the keyring."""
    environ = os.environ if environ is None else environ
    key_id, secret = (environ.get(name, "") for name in ALPACA_ENV)
    if key_id and secret:
        return key_id, secret
    key_id, secret = (keyring.get_password(SERVICE, name) or "" for name in ALPACA_NAMES)
    if key_id and secret:
        return key_id, secret
    raise MissingCredentialsError(
        "no Alpaca keys: run `qgtm keys set alpaca` (or set APCA_API_KEY_ID and "
        "APCA_API_SECRET_KEY)"
    )


def store_alpaca_credentials(key_id: str, secret_key: str) -> None:
    """Save Alpaca keys in the OS keyring under service "qgtm"."""
    if not key_id.strip() or not secret_key.strip():
        raise ValueError("both the key id and the secret key are required")
    keyring.set_password(SERVICE, ALPACA_NAMES[0], key_id.strip())
    keyring.set_password(SERVICE, ALPACA_NAMES[1], secret_key.strip())
