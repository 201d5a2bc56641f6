"""`qgtm data fetch` and `qgtm keys set` against loopback fakes and an in-memory keyring."""

from __future__ import annotations

import keyring
import pytest

from qgtm.cli import main
from tests.fakes.fred import fred_fake
from tests.fakes.keyring_memory import MemoryKeyring


@pytest.fixture
def memory_keyring(monkeypatch):
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    monkeypatch.delenv("QGTM_FRED_API_KEY", raising=False)
    yield ring
    keyring.set_keyring(previous)


def test_keys_set_stores_the_typed_key_in_the_keyring(memory_keyring, monkeypatch, capsys):
    monkeypatch.setattr("getpass.getpass", lambda prompt: "typed-secret\n")
    assert main(["keys", "set", "fred"]) == 0
    assert memory_keyring.secrets[("qgtm", "fred_api_key")] == "typed-secret"
    assert "typed-secret" not in capsys.readouterr().out


def test_fetch_without_a_key_says_how_to_set_it(memory_keyring, tmp_path, capsys):
    assert main(["data", "fetch", "fred", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1] == "qgtm: FRED API key not set: run `qgtm keys set fred` (or set QGTM_FRED_API_KEY)"
    )


def test_fetch_fred_with_a_keyring_key_stores_rows(memory_keyring, tmp_path, monkeypatch, capsys):
    memory_keyring.set_password("qgtm", "fred_api_key", "test-fred-key")
    server = fred_fake(
        vintages={
            s: [("2024-01-02", "1.0", "2024-01-03", "9999-12-31")]
            for s in ("DGS10", "DFII10", "T10YIE", "DTWEXBGS", "IPMAN")
        }
    )
    monkeypatch.setenv("QGTM_FRED_BASE_URL", server.url)
    try:
        code = main(["data", "fetch", "fred", "--data-dir", str(tmp_path), "--from", "2024-01-01"])
    finally:
        server.close()
    assert code == 0
    out = capsys.readouterr()
    assert "fred: 5 rows stored" in out.out
    assert "test-fred-key" not in out.out + out.err


def test_fetch_with_from_after_to_is_one_line(tmp_path, capsys):
    args = ["data", "fetch", "lbma", "--data-dir", str(tmp_path), "--from", "2024-02-01"]
    assert main([*args, "--to", "2024-01-01"]) == 2
    assert "is after --to" in capsys.readouterr().err
