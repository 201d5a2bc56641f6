"""Operator identities for two-person kill-switch resets.

Only a salted scrypt hash of each passphrase is stored (state.sqlite, table operators);
the passphrase itself is never stored, logged or shown.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from datetime import UTC, datetime

from qgtm.engine.state_schema import migrate

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{1,31}$")
MIN_PASSPHRASE = 8
# scrypt cost (RFC 7914): N=2^14, r=8, p=1 is the interactive-login setting.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class OperatorError(ValueError):
    """A bad operator name or passphrase, or an unknown operator."""


def _hash(passphrase: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        passphrase.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )


class OperatorRegistry:
    """Adds and authenticates operators; callers own the transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        migrate(conn)  # tables: state_schema

    def add(self, name: str, passphrase: str) -> None:
        """Register `name`; refuses a taken or malformed name and a short passphrase."""
        if not NAME_PATTERN.match(name):
            raise OperatorError(
                f"operator name {name!r} must be 2-32 lowercase letters, digits, '.', '_' or '-'"
            )
        if len(passphrase) < MIN_PASSPHRASE:
            raise OperatorError(f"passphrase must have at least {MIN_PASSPHRASE} characters")
        if name in self.names():
            raise OperatorError(f"operator {name!r} already exists")
        salt = secrets.token_bytes(16)
        self._conn.execute(
            "INSERT INTO operators (name, salt, passphrase_hash, created_at) VALUES (?, ?, ?, ?)",
            (name, salt.hex(), _hash(passphrase, salt).hex(), datetime.now(UTC).isoformat()),
        )

    def names(self) -> list[str]:
        """Registered operator names, sorted."""
        return [r[0] for r in self._conn.execute("SELECT name FROM operators ORDER BY name")]

    def authenticate(self, name: str, passphrase: str) -> bool:
        """True if `name` exists and `passphrase` matches its stored hash (constant-time)."""
        row = self._conn.execute(
            "SELECT salt, passphrase_hash FROM operators WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            _hash(passphrase, b"timing-equaliser")  # same cost for unknown names
            return False
        return hmac.compare_digest(_hash(passphrase, bytes.fromhex(row[0])).hex(), row[1])
