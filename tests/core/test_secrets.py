from __future__ import annotations

from collections.abc import Iterator

import keyring
import pytest
from keyring.backend import KeyringBackend

from qgtm.cli import main
from qgtm.core.secrets import MissingCredentialsError, alpaca_credentials


class MemoryKeyring(KeyringBackend):
    """An in-memory keyring so tests never touch the OS keychain."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture
def ring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_keys_set_prompts_and_stores_in_the_keyring_without_echoing(
    ring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    answers = iter(["PKID123", "s3cret-value"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert main(["keys", "set", "alpaca"]) == 0
    assert ring.store == {
        ("qgtm", "alpaca_key_id"): "PKID123",
        ("qgtm", "alpaca_secret_key"): "s3cret-value",
    }
    out = capsys.readouterr()
    assert "s3cret-value" not in out.out + out.err
    assert alpaca_credentials(environ={}) == ("PKID123", "s3cret-value")


def test_empty_keys_are_one_clear_line(
    ring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr("getpass.getpass", lambda prompt: "")
    assert main(["keys", "set", "alpaca"]) == 2
    assert (
        capsys.readouterr().err.strip() == "qgtm: both the key id and the secret key are required"
    )


def test_env_vars_win_for_ci(ring: MemoryKeyring):
    env = {"APCA_API_KEY_ID": "env-id", "APCA_API_SECRET_KEY": "env-secret"}
    assert alpaca_credentials(environ=env) == ("env-id", "env-secret")


def test_missing_keys_say_how_to_add_them(ring: MemoryKeyring):
    with pytest.raises(MissingCredentialsError, match="qgtm keys set alpaca"):
        alpaca_credentials(environ={})


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """A headless host: keyring's 'fail' backend raises NoKeyringError on every call."""
    from keyring.backends.fail import Keyring as FailKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())
    yield
    keyring.set_keyring(previous)


def test_a_host_without_a_keyring_reads_as_missing_keys_not_a_crash(no_keyring, monkeypatch):
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    with pytest.raises(MissingCredentialsError, match="qgtm keys set alpaca"):
        alpaca_credentials()
    env = {"APCA_API_KEY_ID": "PK1", "APCA_API_SECRET_KEY": "s"}
    assert alpaca_credentials(env) == ("PK1", "s")  # CI's env vars need no keyring


def test_keys_set_without_a_keyring_is_one_clear_line(
    no_keyring, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    answers = iter(["PKID123", "s3cret-value"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert main(["keys", "set", "alpaca"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no usable OS keyring" in err and "APCA_API_KEY_ID" in err and "\n" not in err
    assert "s3cret" not in err
