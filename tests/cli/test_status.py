"""`qgtm status` and `qgtm status --json` over a book the engine wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qgtm.cli import main
from qgtm.core.config import Config
from qgtm.engine.live.engine import TradingEngine


def strict_json(text: str) -> object:
    """json.loads that, as jq and JSON.parse, refuses NaN and Infinity."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def book(tmp_path: Path, short_config: Config) -> tuple[Path, object]:
    """A data dir after eight demo sessions, and the engine's last snapshot."""
    engine = TradingEngine(short_config, tmp_path)
    try:
        for _ in range(8):
            engine.step()
        snap = engine.snapshot()
    finally:
        engine.close()
    return tmp_path, snap


def test_status_json_is_strict_json_with_the_books_state(book, capsys) -> None:
    data_dir, snap = book
    assert main(["--data-dir", str(data_dir), "status", "--json"]) == 0
    status = strict_json(capsys.readouterr().out)
    assert status["data_dir"] == str(data_dir)
    assert status["last_session"] == snap.session.isoformat()
    assert status["equity"] == pytest.approx(snap.equity, abs=0.01)
    assert status["kill_tier"] == snap.kill_tier.name
    assert status["sessions"] == 8
    held = {p.symbol: p.quantity for p in snap.positions if p.quantity}
    assert held and {p["symbol"]: p["quantity"] for p in status["positions"]} == held
    assert all(isinstance(p["last_price"], float) for p in status["positions"])


def test_status_lines_show_the_same_book(book, capsys) -> None:
    data_dir, snap = book
    assert main(["--data-dir", str(data_dir), "status"]) == 0
    out = capsys.readouterr().out
    assert f"last session {snap.session.isoformat()}" in out
    assert f"equity       {snap.equity:,.2f}" in out
    assert "sessions     8" in out


def test_status_never_writes_to_the_book(book) -> None:
    data_dir, _ = book
    db = data_dir / "state.sqlite"
    before = (db.stat().st_mtime_ns, db.read_bytes())
    assert main(["--data-dir", str(data_dir), "status", "--json"]) == 0
    assert (db.stat().st_mtime_ns, db.read_bytes()) == before


def test_a_file_that_is_not_a_book_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "state.sqlite").write_bytes(b"not a database at all, just text" * 10)
    assert main(["--data-dir", str(tmp_path), "status", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qgtm: ") and "not a QGTM book" in err and err.count("\n") == 1


def test_status_shows_a_tripped_kill_tier(book, capsys) -> None:
    from qgtm.core.enums import KillTier
    from qgtm.engine.state import StateStore

    data_dir, _ = book
    state = StateStore(data_dir)
    try:
        with state.transaction():
            state.set_kill_tier(KillTier.NO_NEW)
    finally:
        state.close()
    assert main(["--data-dir", str(data_dir), "status", "--json"]) == 0
    assert strict_json(capsys.readouterr().out)["kill_tier"] == "NO_NEW"
