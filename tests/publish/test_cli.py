"""`qgtm publish ...` subcommands: keys shown once, clear one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from qgtm.cli import main
from qgtm.publish.store import PublisherStore, hash_key


def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["publish", "--data-dir", str(tmp_path), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_subscriber_prints_the_key_once_and_stores_its_hash(tmp_path: Path, capsys) -> None:
    code, out, _ = run(
        capsys, tmp_path, "add-subscriber", "alice", "--tier", "pro", "--email", "alice@example.com"
    )
    assert code == 0
    key = out.split("store it now): ")[1].strip()
    store = PublisherStore(tmp_path / "publisher.sqlite")
    assert store.by_key(key).name == "alice"
    assert key not in "\n".join(store.conn.iterdump()) and hash_key(key)
    store.close()
    code, out, _ = run(capsys, tmp_path, "list")
    assert "alice" in out and "email" in out and key not in out


def test_rotate_key_replaces_the_key(tmp_path: Path, capsys) -> None:
    run(capsys, tmp_path, "add-subscriber", "bob", "--tier", "free")
    code, out, _ = run(capsys, tmp_path, "rotate-key", "1")
    assert code == 0
    new = out.split("): ")[1].strip()
    store = PublisherStore(tmp_path / "publisher.sqlite")
    assert store.by_key(new).name == "bob"
    store.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add-subscriber", "x", "--tier", "gold"), "unknown tier 'gold'"),
        (("rotate-key", "99"), "no subscriber with id 99"),
        (("replay", "--since", "yesterday"), "not an ISO time"),
    ],
)
def test_mistakes_get_one_line_and_exit_2(tmp_path: Path, capsys, args, message) -> None:
    code, _, err = run(capsys, tmp_path, *args)
    assert code == 2 and message in err and err.count("\n") == 1


def test_serve_without_a_secret_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("QGTM_PUBLISH_SECRET", raising=False)
    monkeypatch.setattr("keyring.get_password", lambda *a: None)
    code, _, err = run(capsys, tmp_path, "serve")
    assert code == 2 and "no publish secret" in err


def test_help_lists_the_publish_actions(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["publish", "--help"])
    out = capsys.readouterr().out
    for action in ("serve", "add-subscriber", "rotate-key", "list", "replay", "status"):
        assert action in out
