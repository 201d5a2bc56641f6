"""`qgtm keys set NAME`: API keys into the OS keyring, typed at a hidden prompt.

The keyring backend is checked before any prompt: on a host without one the user
learns that (and how to get one) before typing a secret for nothing.
"""

from __future__ import annotations

import argparse
import getpass

from qgtm.cli import CliError
from qgtm.core.secrets import SERVICE, KeyringUnavailableError, check_keyring, store_secret

ENV_INSTEAD = {"alpaca": "APCA_API_KEY_ID and APCA_API_SECRET_KEY"}
"""Environment variables that hold a key instead of the keyring (CI)."""


def _env_names(name: str) -> str:
    return ENV_INSTEAD.get(name, f"QGTM_{name.upper()}_API_KEY")


def run(args: argparse.Namespace) -> int:
    """Check the keyring, prompt for the key (hidden), store it."""
    try:
        check_keyring()
        if args.name == "alpaca":
            _store_alpaca()
        else:
            _store_api_key(args.name)
    except KeyringUnavailableError as exc:
        raise CliError(f"no usable OS keyring ({exc}); or set {_env_names(args.name)}") from None
    print(
        f"stored the {'Alpaca keys' if args.name == 'alpaca' else f'{args.name} key'} "
        f"in the OS keyring (service {SERVICE!r})"
    )
    return 0


def _store_api_key(name: str) -> None:
    secret = getpass.getpass(f"{name} API key (input hidden): ").strip()
    if not secret:
        raise CliError("no key entered; nothing stored")
    store_secret(f"{name}_api_key", secret)


def _store_alpaca() -> None:
    from qgtm.core.secrets import store_alpaca_credentials

    key_id = getpass.getpass("Alpaca key id: ")
    secret = getpass.getpass("Alpaca secret key: ")
    try:
        store_alpaca_credentials(key_id, secret)
    except ValueError as exc:
        raise CliError(str(exc)) from None
