"""`qgtm keys set`: the keyring backend is checked before any secret is asked for."""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends.fail import Keyring as FailKeyring

from qgtm.cli import main
from tests.fakes.keyring_memory import MemoryKeyring


def use_backend(backend: KeyringBackend) -> Iterator[KeyringBackend]:
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def memory() -> Iterator[KeyringBackend]:
    yield from use_backend(MemoryKeyring())


@pytest.fixture
def failing() -> Iterator[KeyringBackend]:
    """A headless host: keyring's fail backend, as keyring picks when it finds none."""
    yield from use_backend(FailKeyring())


class PlaintextKeyring(MemoryKeyring):
    """Stands for keyrings.alt.file.PlaintextKeyring: works, but keeps secrets in clear."""


@pytest.fixture
def plaintext() -> Iterator[KeyringBackend]:
    yield from use_backend(PlaintextKeyring())


@pytest.fixture
def no_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(prompt: str = "") -> str:
        raise AssertionError(f"prompted {prompt!r} although the key cannot be stored")

    monkeypatch.setattr("getpass.getpass", refuse)


@pytest.mark.parametrize("name", ["fred", "eia", "alpaca"])
def test_without_a_backend_it_says_how_to_get_one_before_any_prompt(
    failing, no_prompt, name: str, capsys
) -> None:
    assert main(["keys", "set", name]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("qgtm: no usable OS keyring")
    assert "Secret Service" in err and "keyrings.cryptfile" in err
    assert "keyrings.alt is not encrypted" in err
    env = "APCA_API_KEY_ID" if name == "alpaca" else f"QGTM_{name.upper()}_API_KEY"
    assert env in err


def test_a_plaintext_backend_is_refused_before_any_prompt(plaintext, no_prompt, capsys) -> None:
    assert main(["keys", "set", "fred"]) == 2
    err = capsys.readouterr().err
    assert "stores secrets unencrypted" in err and err.count("\n") == 1
    assert plaintext.secrets == {}


def test_with_a_backend_the_key_is_asked_for_and_stored(memory, monkeypatch, capsys) -> None:
    prompts: list[str] = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: prompts.append(prompt) or "k-123")
    assert main(["keys", "set", "eia"]) == 0
    assert prompts == ["eia API key (input hidden): "]
    assert memory.secrets == {("qgtm", "eia_api_key"): "k-123"}
    out, err = capsys.readouterr()
    assert "k-123" not in out + err and "stored the eia key" in out
