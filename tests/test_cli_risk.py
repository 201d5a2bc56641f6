"""`qgtm risk ...`: the two-person reset from the command line (engine not running)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from qgtm.cli import main
from qgtm.core.types import RiskLimits
from qgtm.engine.audit import AuditLog
from qgtm.engine.lock import EngineLock
from qgtm.engine.risk.manager import RiskManager
from qgtm.engine.state import StateStore


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A stored book whose kill switch went to NO_NEW."""
    state = StateStore(tmp_path)
    risk = RiskManager(state, AuditLog(state.conn), RiskLimits(), Decimal(1_000_000))
    with state.transaction():
        risk.update_pnl(Decimal(-60_000), Decimal(940_000), datetime(2024, 1, 2, tzinfo=UTC))
    state.close()
    return tmp_path


def _typed(monkeypatch: pytest.MonkeyPatch, *answers: str) -> None:
    queue = list(answers)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": queue.pop(0))


def _risk(book: Path, *args: str) -> int:
    return main(["risk", *args, "--data-dir", str(book)])


def test_cli_two_person_reset_refuses_self_approval_then_resets(book, monkeypatch, capsys):
    _typed(monkeypatch, "alicepass1", "alicepass1", "bobpass22", "bobpass22")
    assert _risk(book, "add-operator", "alice") == 0
    assert _risk(book, "add-operator", "bob") == 0
    _typed(monkeypatch, "alicepass1")
    assert _risk(book, "request-reset", "alice") == 0
    _typed(monkeypatch, "alicepass1")
    assert _risk(book, "approve-reset", "alice") == 1
    assert "cannot approve" in capsys.readouterr().out
    _typed(monkeypatch, "bobpass22")
    assert _risk(book, "approve-reset", "bob") == 0
    assert _risk(book, "status") == 0
    out = capsys.readouterr().out
    assert "kill tier    NORMAL" in out
    assert "NO_NEW -> NORMAL" in out
    # the reset carries the book's time (its last close, 2024-01-02), as the escalation
    # does; the wall clock of the approval is in the detail
    today = datetime.now(UTC).date().isoformat()
    assert "  2024-01-02 NO_NEW -> NORMAL  reset requested by alice, approved by bob" in out
    assert f"(wall clock {today}" in out


def test_cli_refuses_while_an_engine_holds_the_book(book, monkeypatch, capsys):
    lock = EngineLock(book)
    lock.acquire()
    try:
        assert _risk(book, "status") == 2
    finally:
        lock.release()
    err = capsys.readouterr().err.strip()
    assert err.startswith("qgtm: an engine") and "palette" in err
    assert "\n" not in err


def test_cli_add_operator_with_mismatched_passphrases_is_one_clear_line(book, monkeypatch, capsys):
    _typed(monkeypatch, "alicepass1", "alicepass2")
    assert _risk(book, "add-operator", "alice") == 2
    assert capsys.readouterr().err.strip() == (
        "qgtm: the two passphrases differ; nothing was changed"
    )


def test_cli_short_passphrase_is_one_clear_line(book, monkeypatch, capsys):
    _typed(monkeypatch, "short", "short")
    assert _risk(book, "add-operator", "alice") == 2
    assert "at least 8" in capsys.readouterr().err


def test_help_lists_the_risk_actions(capsys):
    with pytest.raises(SystemExit):
        main(["risk", "--help"])
    out = capsys.readouterr().out
    for action in ("status", "request-reset", "approve-reset", "add-operator"):
        assert action in out
