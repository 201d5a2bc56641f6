"""Day seals (RFC 6962 Merkle roots), tamper detection down to one byte, search, CLI."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from qgtm.cli import main
from qgtm.engine.audit import AuditLog, merkle_root
from qgtm.engine.state import StateStore

COLUMNS = ("recorded_at", "sim_time", "event", "actor", "payload", "prev_hash", "hash")


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_merkle_root_matches_rfc6962_by_hand():
    leaves = [hashlib.sha256(bytes([i])).hexdigest() for i in range(3)]
    l0, l1, l2 = (_h(b"\x00" + bytes.fromhex(x)) for x in leaves)
    # n=3: k=2 -> MTH = H(0x01 || H(0x01 || l0 || l1) || l2)
    expected = _h(b"\x01" + _h(b"\x01" + l0 + l1) + l2).hex()
    assert merkle_root(leaves) == expected
    assert merkle_root(leaves[:1]) == l0.hex()
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()


def _filled(path: Path, days: int = 4, per_day: int = 3) -> tuple[StateStore, AuditLog]:
    state = StateStore(path)
    audit = AuditLog(state.conn)
    with state.transaction():
        for d in range(days):
            for i in range(per_day):
                audit.append(
                    "ORDER_FILLED" if i % 2 else "ORDER_SUBMITTED",
                    "engine" if i < 2 else "alice",
                    f"2024-01-{d + 2:02d}T15:3{i}:00-05:00",
                    {"symbol": f"SYM{d}{i}", "quantity": 100 + i},
                )
    return state, audit


def test_each_finished_day_is_sealed_with_its_merkle_root(tmp_path: Path):
    state, audit = _filled(tmp_path)
    days = audit.merkle_days()
    assert [d for d, _, _ in days] == ["2024-01-02", "2024-01-03", "2024-01-04"]
    hashes = [r[0] for r in state.conn.execute("SELECT hash FROM audit WHERE seq <= 3")]
    assert days[0] == ("2024-01-02", 3, merkle_root(hashes))
    result = audit.verify_all()
    assert result.ok and result.records == 12 and result.sealed_days == 3


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("seq", [1, 5, 12])
def test_one_flipped_byte_in_any_column_of_any_row_names_that_record(
    tmp_path: Path, column: str, seq: int
):
    state, audit = _filled(tmp_path)
    conn = state.conn
    conn.execute("DROP TRIGGER audit_no_update")
    value = conn.execute(f"SELECT {column} FROM audit WHERE seq = ?", (seq,)).fetchone()[0]
    raw = bytearray(value.encode())
    raw[len(raw) // 2] ^= 0x01
    conn.execute(f"UPDATE audit SET {column} = ? WHERE seq = ?", (raw.decode(), seq))
    assert audit.verify() == seq


def test_a_flipped_byte_in_the_sqlite_file_is_found(tmp_path: Path):
    state, _ = _filled(tmp_path)
    target = state.conn.execute("SELECT payload FROM audit WHERE seq = 7").fetchone()[0]
    state.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    state.close()
    path = tmp_path / "state.sqlite"
    data = bytearray(path.read_bytes())
    offset = data.find(target.encode())
    assert offset > 0
    data[offset + 5] ^= 0x01
    path.write_bytes(bytes(data))
    assert AuditLog(StateStore(tmp_path).conn).verify() == 7
    out = subprocess.run(
        [sys.executable, "-m", "qgtm.cli", "--data-dir", str(tmp_path), "audit", "verify"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "BROKEN at record 7" in out.stdout


def test_every_byte_of_one_record_in_the_file_is_covered(tmp_path: Path):
    """Flip each byte of record 4's stored cell in turn: verify never passes."""
    state, _ = _filled(tmp_path)
    body = state.conn.execute("SELECT recorded_at, hash FROM audit WHERE seq = 4").fetchone()
    state.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    state.close()
    path = tmp_path / "state.sqlite"
    pristine = path.read_bytes()
    start = pristine.find(body[0].encode())
    end = pristine.find(body[1].encode(), start) + len(body[1])
    assert 0 < start < end
    for offset in range(start, end):
        data = bytearray(pristine)
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))
        conn = sqlite3.connect(path)
        try:
            result = AuditLog(conn).verify_all()
        finally:
            conn.close()
        assert not result.ok, f"flip at byte {offset} went unnoticed"
    path.write_bytes(pristine)


def test_dropping_the_last_records_of_a_sealed_day_is_found(tmp_path: Path):
    state, audit = _filled(tmp_path)
    state.conn.execute("DROP TRIGGER audit_no_delete")
    state.conn.execute("DELETE FROM audit WHERE seq >= 8")
    result = audit.verify_all()
    assert not result.ok and result.first_bad == 8


def test_search_filters_by_event_actor_text_and_date(tmp_path: Path):
    _, audit = _filled(tmp_path)
    assert {r.event for r in audit.search(event="order_filled")} == {"ORDER_FILLED"}
    assert {r.actor for r in audit.search(actor="ALICE")} == {"alice"}
    assert [r.payload["symbol"] for r in audit.search(text="sym21")] == ["SYM21"]
    dated = audit.search(since="2024-01-03", until="2024-01-04")
    assert sorted({r.sim_time[:10] for r in dated}) == ["2024-01-03", "2024-01-04"]
    assert len(audit.search(event="ORDER_SUBMITTED", actor="alice", since="2024-01-05")) == 1


def test_cli_search_and_tail(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    state, _ = _filled(tmp_path)
    state.close()
    assert main(["--data-dir", str(tmp_path), "audit", "search", "--actor", "alice"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 4 and all("alice" in line for line in out)
    assert main(["--data-dir", str(tmp_path), "audit", "verify"]) == 0
    assert "12 records, 3 sealed days" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["--data-dir", str(tmp_path), "audit", "search", "--since", "yesterday"])
    assert exc.value.code == 2
