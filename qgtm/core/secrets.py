"""Secrets from the environment (CI) or the OS keyring; never from a file, never logged.

Every key and token QGTM uses is looked up here: broker keys, data-provider API keys,
the publish secret, chat tokens. All keyring entries live under service "qgtm".
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SERVICE = "qgtm"
ALPACA_NAMES = ("alpaca_key_id", "alpaca_secret_key")
ALPACA_ENV = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY")  # Alpaca's own variable names


class KeyringUnavailableError(RuntimeError):
    """The OS has no usable keyring backend (e.g. a headless VM without Secret Service)."""


class MissingCredentialsError(LookupError):
    """No credentials for a service in the keyring or the environment."""


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


KEYRING_HELP = (
    "install and unlock an encrypted backend: the Secret Service (gnome-keyring or "
    "KeePassXC over D-Bus) or keyrings.cryptfile (an encrypted file: pip install "
    "keyrings.cryptfile, then PYTHON_KEYRING_BACKEND="
    "keyrings.cryptfile.cryptfile.CryptFileKeyring); keyrings.alt is not encrypted"
)
"""How to get a keyring on a host that has none (a headless VM, a container)."""


def check_keyring() -> str:
    """The name of the keyring backend `store_secret` would write to; raises
    KeyringUnavailableError, before anything is asked or written, when there is none
    (keyring's fail or null backend) or when it keeps secrets in a plain file
    (keyrings.alt's PlaintextKeyring): a secret never goes to a file in the clear."""
    import keyring
    from keyring.backends import chainer, fail, null

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring | null.Keyring) or (
        isinstance(backend, chainer.ChainerBackend) and not backend.backends
    ):
        raise KeyringUnavailableError(f"no OS keyring backend found; {KEYRING_HELP}")
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    if "plaintext" in name.lower():
        raise KeyringUnavailableError(
            f"the keyring backend {name} stores secrets unencrypted; {KEYRING_HELP}"
        )
    return name


def store_secret(entry: str, value: str) -> None:
    """Save `value` in the OS keyring as (SERVICE, `entry`)."""
    import keyring
    from keyring.errors import KeyringError

    try:
        keyring.set_password(SERVICE, entry, value)
    except KeyringError as exc:
        raise KeyringUnavailableError(str(exc)) from None


def alpaca_credentials(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(key id, secret key) for Alpaca's broker and its market data alike: env
    APCA_API_KEY_ID / APCA_API_SECRET_KEY, else the keyring."""
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
    """Save Alpaca keys in the OS keyring under service "qgtm" (`qgtm keys set alpaca`)."""
    if not key_id.strip() or not secret_key.strip():
        raise ValueError("both the key id and the secret key are required")
    store_secret(ALPACA_NAMES[0], key_id.strip())
    store_secret(ALPACA_NAMES[1], secret_key.strip())
