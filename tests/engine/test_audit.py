import sqlite3

from qgtm.engine.audit import GENESIS_HASH, AuditLog


def _log() -> tuple[sqlite3.Connection, AuditLog]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    return conn, AuditLog(conn)


def test_each_record_chains_to_the_previous_hash():
    _, audit = _log()
    first = audit.append("ORDER_SUBMITTED", "engine", "2024-01-02T15:30", {"qty": 1})
    second = audit.append("ORDER_FILLED", "engine", "2024-01-03T09:30", {"qty": 1})
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert audit.verify() is None


def test_tampered_payload_is_found_at_its_record():
    conn, audit = _log()
    for i in range(5):
        audit.append("EVENT", "engine", f"2024-01-0{i + 1}", {"i": i})
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET payload = '{\"i\":9}' WHERE seq = 3")
    assert audit.verify() == 3


def test_audit_rows_cannot_be_updated_or_deleted_through_sql():
    conn, audit = _log()
    audit.append("EVENT", "engine", "2024-01-02", {})
    for statement in ("UPDATE audit SET actor = 'x'", "DELETE FROM audit"):
        try:
            conn.execute(statement)
        except sqlite3.DatabaseError as exc:
            assert "append-only" in str(exc)
        else:
            raise AssertionError(f"{statement} was allowed")
