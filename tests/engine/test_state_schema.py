"""state.sqlite's schema: one owner, numbered migrations, and old databases upgrade in place."""

from __future__ import annotations

import re
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from qgtm.core.enums import KillTier
from qgtm.engine.audit import AuditLog
from qgtm.engine.state import STATE_DB, StateStore
from qgtm.engine.state_schema import LATEST, StateSchemaError, migrate, statements, version

# The DDL qgtm ran before migrations were numbered (tca in its first-release shape).
LEGACY_DDL = (Path(__file__).parents[1] / "fixtures" / "state_c8881ed.sql").read_text()


def _columns(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        ).fetchall()
    ]
    return {n: conn.execute(f"PRAGMA table_info({n})").fetchall() for n in names}


def test_a_database_from_before_numbered_migrations_upgrades_in_place_with_its_rows(
    tmp_path: Path,
):
    conn = sqlite3.connect(tmp_path / STATE_DB, isolation_level=None)
    conn.executescript(LEGACY_DDL)
    conn.close()
    _seed_legacy_rows(tmp_path)

    state = StateStore(tmp_path)
    try:
        assert version(state.conn) == LATEST
        order = state.conn.execute(
            "SELECT status, filled_quantity, avg_fill_price FROM orders"
        ).fetchone()
        assert order == ("FILLED", 100, "101.250000")
        assert state.conn.execute("SELECT count(*) FROM fills").fetchone()[0] == 1
        tca = state.conn.execute(
            "SELECT implementation_shortfall_bps, arrival_source, vwap_source FROM tca"
        ).fetchone()
        assert tca == (227.3, "", "")  # the columns the old ALTER added, with their default
        book = state.book_state()
        assert book.kill_tier is KillTier.THROTTLE
        assert str(book.cash) == "989874.650000"  # the exact digits, not a float
        assert str(book.peak_equity) == "1000123.4500"
        assert state.get_meta("last_index") == "42"  # other engine values stay in meta
        left = state.conn.execute("SELECT key FROM meta ORDER BY key").fetchall()
        assert left == [("last_index",)]
    finally:
        state.close()


def _seed_legacy_rows(data_dir: Path) -> None:
    conn = sqlite3.connect(data_dir / STATE_DB, isolation_level=None)
    conn.executescript(
        """
        INSERT INTO orders (client_order_id, decision_date, created_at, symbol, side,
            quantity, order_type, status, reason, filled_quantity, avg_fill_price, filled_on)
        VALUES ('o-1', '2024-03-05', '2024-03-05T21:00:00+00:00', 'GLD', 'BUY', 100,
            'market', 'FILLED', 'rebalance', 100, '101.250000', '2024-03-06');
        INSERT INTO fills VALUES ('o-1-F1', 'o-1', 'GLD', 'BUY', 100, '101.25', '0.35',
            '2024-03-06T14:30:00+00:00');
        INSERT INTO execution_orders (client_order_id, strategy, algo, decision_price)
            VALUES ('o-1', 'tsmom', 'MARKET', '99');
        INSERT INTO tca (client_order_id, strategy, symbol, side, algo, quantity,
            filled_quantity, avg_fill_price, decision_price, arrival_price, vwap_price,
            end_price, commission, arrival_cost_bps, vwap_slippage_bps,
            implementation_shortfall_bps, computed_at)
        VALUES ('o-1', 'tsmom', 'GLD', 'BUY', 'MARKET', 100, 100, 101.25, 99, 100, 101,
            102, 0.35, 124.9, 24.7, 227.3, '2024-03-06T21:00:00+00:00');
        INSERT INTO meta VALUES ('kill_tier', 'THROTTLE');
        INSERT INTO meta VALUES ('cash', '989874.650000');
        INSERT INTO meta VALUES ('peak_equity', '1000123.4500');
        INSERT INTO meta VALUES ('last_index', '42');
        """
    )
    conn.close()


def test_an_upgraded_database_has_exactly_the_shape_of_a_new_one(tmp_path: Path):
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    conn = sqlite3.connect(tmp_path / "old" / STATE_DB, isolation_level=None)
    conn.executescript(LEGACY_DDL)
    conn.close()
    old, new = StateStore(tmp_path / "old"), StateStore(tmp_path / "new")
    try:
        upgraded, fresh = _columns(old.conn), _columns(new.conn)
    finally:
        old.close()
        new.close()
    assert upgraded == fresh
    assert "book_state" in fresh and "tca" in fresh and "audit" in fresh


def test_migrating_again_changes_nothing(tmp_path: Path):
    state = StateStore(tmp_path)
    try:
        with state.transaction():
            state.set_cash(Decimal("123.456789"))
        before = _columns(state.conn)
        assert migrate(state.conn) == LATEST
        assert _columns(state.conn) == before
        assert state.book_state().cash == Decimal("123.456789")
    finally:
        state.close()
    again = StateStore(tmp_path)  # a restart opens the same database, same version
    try:
        assert version(again.conn) == LATEST
        assert again.book_state().cash == Decimal("123.456789")
    finally:
        again.close()


def test_a_fresh_book_has_a_normal_tier_and_no_stored_cash_or_peak(tmp_path: Path):
    state = StateStore(tmp_path)
    try:
        book = state.book_state()
        assert (book.kill_tier, book.cash, book.peak_equity) == (KillTier.NORMAL, None, None)
        assert state.load_book(Decimal("1000000")).cash == Decimal("1000000")
    finally:
        state.close()


def test_tier_cash_and_peak_round_trip_through_typed_columns_and_the_meta_keys(tmp_path: Path):
    state = StateStore(tmp_path)
    try:
        with state.transaction():
            state.set_kill_tier(KillTier.NO_NEW)
            state.set_meta("peak_equity", Decimal("1000500.125"))
            state.set_cash(Decimal("-12.5"))
        assert state.get_meta("kill_tier") == "NO_NEW"
        assert state.get_meta("cash") == "-12.5"
        assert state.book_state().peak_equity == Decimal("1000500.125")
        assert state.conn.execute("SELECT count(*) FROM meta").fetchone()[0] == 0
    finally:
        state.close()


@pytest.mark.parametrize(
    ("column", "value"),
    [("kill_tier", "PANIC"), ("cash", "NaN"), ("cash", ""), ("peak_equity", "12,5")],
)
def test_the_book_state_columns_refuse_values_that_are_not_a_tier_or_a_decimal(
    tmp_path: Path, column: str, value: str
):
    state = StateStore(tmp_path)
    try:
        with pytest.raises(sqlite3.IntegrityError):
            state.conn.execute(f"UPDATE book_state SET {column} = ? WHERE id = 1", (value,))
        with pytest.raises(sqlite3.IntegrityError):  # one row only
            state.conn.execute("INSERT INTO book_state (id) VALUES (2)")
    finally:
        state.close()


def test_a_database_from_a_newer_qgtm_is_refused_with_a_clear_message(tmp_path: Path):
    conn = sqlite3.connect(tmp_path / STATE_DB, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    with pytest.raises(StateSchemaError, match="newer than this qgtm"):
        StateStore(tmp_path)


def test_a_component_handed_a_bare_connection_gets_the_whole_schema():
    conn = sqlite3.connect(":memory:", isolation_level=None)
    AuditLog(conn)
    assert version(conn) == LATEST
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"audit", "orders", "book_state", "outbox"} <= tables


def test_a_failed_migration_leaves_the_old_version_and_no_half_step(tmp_path: Path):
    conn = sqlite3.connect(tmp_path / STATE_DB, isolation_level=None)
    conn.executescript(LEGACY_DDL)
    conn.execute("INSERT INTO meta VALUES ('cash', 'not money')")  # the CHECK refuses it
    with pytest.raises(sqlite3.IntegrityError):
        migrate(conn)
    assert version(conn) == 0
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "book_state" not in tables
    assert conn.execute("SELECT value FROM meta WHERE key = 'cash'").fetchone() == ("not money",)
    conn.close()


def test_statements_keep_a_trigger_body_whole():
    script = (
        "CREATE TABLE t (x);\n"
        "CREATE TRIGGER g BEFORE DELETE ON t\nBEGIN SELECT RAISE(ABORT, 'no'); END;\n"
    )
    assert len(statements(script)) == 2


def test_no_other_sqlite_module_creates_or_alters_a_table_of_state_sqlite(tmp_path: Path):
    """One owner: a state.sqlite table named in any other SQLite-using module's CREATE or
    ALTER would be a second, unversioned definition of it."""
    state = StateStore(tmp_path)
    try:
        tables = {
            r[0] for r in state.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    finally:
        state.close()
    root = Path(__file__).parents[2] / "qgtm"
    pattern = re.compile(r"(?:CREATE TABLE(?: IF NOT EXISTS)?|ALTER TABLE)\s+(\w+)", re.I)
    offenders = {
        (str(path.relative_to(root)), name)
        for path in root.rglob("*.py")
        if path.name != "state_schema.py" and "sqlite3" in (text := path.read_text())
        for name in pattern.findall(text)
        if name in tables
    }
    assert offenders == set()
    assert {"orders", "tca", "book_state", "audit", "outbox", "operators"} <= tables
