"""Broker credentials: from the OS keyring (service "qgtm"), or env vars for CI.

Never from the config file, never logged. `qgtm keys set alpaca` stores them.
"""

from __future__ import annotations

from collections.abc import Mapping

from qgtm.core.secrets import SERVICE, read_secret, store_secret

__all__ = ["SERVICE", "alpaca_credentials", "store_alpaca_credentials"]

ALPACA_NAMES = ("alpaca_key_id", "alpaca_secret_key")
ALPACA_ENV = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY")  # Alpaca's own variable names


class MissingCredentialsError(LookupError):
    """No credentials for a broker in the keyring or the environment."""


def alpaca_credentials(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(key id, secret key): env APCA_API_KEY_ID/APCA_API_SECRET_KEY, else the keyring."""
    key_id, secret = (
        read_secret(entry, env, environ)
        for entry, env in zip(ALPACA_NAMES, ALPACA_ENV, strict=True)
    )
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
    store_secret(ALPACA_NAMES[0], key_id.strip())
    store_secret(ALPACA_NAMES[1], secret_key.strip())
