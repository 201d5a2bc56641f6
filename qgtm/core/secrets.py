"""Secrets from the environment (CI) or the OS keyring; never from a file, never logged.

Every key and token QGTM uses is looked up here: broker keys, data-provider API keys,
the publish secret, chat tokens. All keyring entries live under service "qgtm".
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SERVICE = "qgtm"


class KeyringUnavailableError(RuntimeError):
    """The OS has no usable keyring backend (e.g. a headless VM without Secret Service)."""


def read_secret(
    entry: str, env_name: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """The secret in env `env_name` if set, else keyring entry (SERVICE, `entry`); "" if
    neither holds one. A host without a keyring backend counts as holding none."""
    environ = os.environ if environ is None else environ
    if env_name and environ.get(env_name):
        return environ[env_name]
    try:
        import keyring

        return keyring.get_password(SERVICE, entry) or ""
    except Exception:  # no backend, locked, misconfigured: a missing secret, not a crash
        return ""


def store_secret(entry: str, value: str) -> None:
    """Save `value` in the OS keyring as (SERVICE, `entry`)."""
    import keyring
    from keyring.errors import KeyringError

    try:
        keyring.set_password(SERVICE, entry, value)
    except KeyringError as exc:
        raise KeyringUnavailableError(str(exc)) from None
