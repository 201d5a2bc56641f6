"""The schema of `state.sqlite`, in one place, as numbered migrations.

Every table of the engine's state database is created here and nowhere else: the book
(orders, fills, positions, equity, `book_state`), signals and risk events, the OMS's
execution tables (parents, child slices, benchmarks, TCA), the kill-switch resets and
strategy sleeves, operators, the learning loop and model registry, the audit chain and
the publisher outbox. The modules that use a table own its queries, not its shape.

`migrate(conn)` brings a database to the newest version: the migrations not yet applied
run in order, in one IMMEDIATE transaction with `PRAGMA user_version` (SQLite's header
field for exactly this, https://www.sqlite.org/pragma.html#pragma_user_version) set to
the number of the last one, so a crash leaves the old version or the new one, never
half of a step. A database written by qgtm before migrations were numbered has
user_version 0; migration 1 adopts it in place (its tables are kept with their rows).

Adding a change: append a `Migration` (never edit one that has shipped), and say in its
summary what it does to existing rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass


class StateSchemaError(RuntimeError):
    """state.sqlite was written by a newer qgtm than this one."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered step: SQL statements, then an optional Python step on the connection."""

    summary: str
    sql: str = ""
    step: Callable[[sqlite3.Connection], None] | None = None

    def apply(self, conn: sqlite3.Connection) -> None:
        """Run this step inside the caller's transaction."""
        for statement in statements(self.sql):
            conn.execute(statement)
        if self.step is not None:
            self.step(conn)


def statements(script: str) -> list[str]:
    """Split a script into complete SQL statements (triggers keep their inner `;`).

    `executescript` is not used because it commits any open transaction first.
    """
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending.strip()[:60]!r}")
    return out


# Version 1: the tables as qgtm created them before migrations were numbered (each
# constructor ran its own CREATE TABLE IF NOT EXISTS). On an older database the same
# statements create only the tables it lacks.
_BASELINE = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    client_order_id TEXT PRIMARY KEY,
    decision_date TEXT NOT NULL,
    created_at TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    order_type TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    filled_quantity INTEGER NOT NULL DEFAULT 0,
    avg_fill_price TEXT,
    filled_on TEXT
);
CREATE INDEX IF NOT EXISTS orders_by_status ON orders(status);
CREATE TABLE IF NOT EXISTS fills (
    fill_id TEXT PRIMARY KEY,
    client_order_id TEXT NOT NULL REFERENCES orders(client_order_id),
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    price TEXT NOT NULL,
    commission TEXT NOT NULL,
    filled_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    symbol TEXT PRIMARY KEY,
    quantity INTEGER NOT NULL,
    avg_price TEXT NOT NULL,
    last_price TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS equity (
    session TEXT PRIMARY KEY,
    equity TEXT NOT NULL,
    cash TEXT NOT NULL,
    daily_pnl TEXT NOT NULL,
    gross_exposure TEXT NOT NULL,
    kill_tier TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signals (
    strategy TEXT NOT NULL,
    as_of TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    weight REAL NOT NULL,
    confidence REAL NOT NULL,
    rationale TEXT NOT NULL,
    PRIMARY KEY (strategy, as_of, symbol)
);
CREATE TABLE IF NOT EXISTS risk_events (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    tier TEXT NOT NULL,
    symbol TEXT,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS execution_orders (
    client_order_id TEXT PRIMARY KEY REFERENCES orders(client_order_id),
    strategy TEXT NOT NULL,
    algo TEXT NOT NULL,
    decision_price TEXT NOT NULL,
    broker_order_id TEXT,
    remaining_quantity INTEGER NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS child_orders (
    child_order_id TEXT PRIMARY KEY,
    parent_id TEXT NOT NULL REFERENCES orders(client_order_id),
    quantity INTEGER NOT NULL,
    price TEXT NOT NULL,
    filled_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS child_orders_by_parent ON child_orders(parent_id);
CREATE TABLE IF NOT EXISTS algo_parents (
    parent_id TEXT PRIMARY KEY REFERENCES orders(client_order_id),
    algo TEXT NOT NULL,
    adv REAL,
    window_start TEXT,
    window_end TEXT,
    capped_remainder INTEGER NOT NULL DEFAULT 0,
    phase TEXT NOT NULL DEFAULT 'WAITING'
);
CREATE TABLE IF NOT EXISTS child_slices (
    child_order_id TEXT PRIMARY KEY,
    parent_id TEXT NOT NULL REFERENCES orders(client_order_id),
    slice_no INTEGER NOT NULL,
    release_at TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'PLANNED',
    broker_order_id TEXT,
    filled_quantity INTEGER NOT NULL DEFAULT 0,
    filled_notional TEXT NOT NULL DEFAULT '0',
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS child_slices_by_parent ON child_slices(parent_id, slice_no);
CREATE TABLE IF NOT EXISTS order_benchmarks (
    client_order_id TEXT PRIMARY KEY REFERENCES orders(client_order_id),
    arrival_price TEXT,
    arrival_source TEXT NOT NULL DEFAULT '',
    window_start TEXT NOT NULL,
    window_end TEXT
);
CREATE TABLE IF NOT EXISTS tca (
    client_order_id TEXT PRIMARY KEY REFERENCES orders(client_order_id),
    strategy TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    algo TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    filled_quantity INTEGER NOT NULL,
    avg_fill_price REAL,
    decision_price REAL NOT NULL,
    arrival_price REAL NOT NULL,
    vwap_price REAL NOT NULL,
    end_price REAL NOT NULL,
    commission REAL NOT NULL,
    arrival_cost_bps REAL,
    vwap_slippage_bps REAL,
    implementation_shortfall_bps REAL NOT NULL,
    computed_at TEXT NOT NULL,
    arrival_source TEXT NOT NULL DEFAULT '',
    vwap_source TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS reset_requests (
    id INTEGER PRIMARY KEY,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    from_tier TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT
);
CREATE TABLE IF NOT EXISTS strategy_sleeves (
    strategy TEXT NOT NULL,
    session_index INTEGER NOT NULL,
    weights TEXT NOT NULL,
    PRIMARY KEY (strategy, session_index)
);
CREATE TABLE IF NOT EXISTS operators (
    name TEXT PRIMARY KEY,
    salt TEXT NOT NULL,
    passphrase_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS strategy_returns (
    strategy TEXT NOT NULL, session TEXT NOT NULL, ret REAL NOT NULL,
    PRIMARY KEY (strategy, session)
);
CREATE TABLE IF NOT EXISTS decay_history (
    strategy TEXT NOT NULL, session TEXT NOT NULL, status TEXT NOT NULL,
    sharpe REAL NOT NULL, hit_rate REAL NOT NULL, drift REAL NOT NULL, reasons TEXT NOT NULL,
    PRIMARY KEY (strategy, session)
);
CREATE TABLE IF NOT EXISTS learn_jobs (
    strategy TEXT NOT NULL, triggered_session TEXT NOT NULL, session_index INTEGER NOT NULL,
    params TEXT NOT NULL, status TEXT NOT NULL,
    PRIMARY KEY (strategy, triggered_session)
);
CREATE TABLE IF NOT EXISTS models (
    model_id TEXT PRIMARY KEY,
    strategy TEXT NOT NULL,
    version INTEGER NOT NULL,
    stage TEXT NOT NULL,
    params TEXT NOT NULL,
    artifact_sha256 TEXT NOT NULL,
    train_start TEXT,
    train_end TEXT,
    metrics TEXT NOT NULL,
    data_hash TEXT NOT NULL,
    created_session TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (strategy, version)
);
CREATE TABLE IF NOT EXISTS shadow_runs (
    run_id INTEGER PRIMARY KEY,
    strategy TEXT NOT NULL,
    candidate_id TEXT NOT NULL REFERENCES models(model_id),
    production_id TEXT NOT NULL REFERENCES models(model_id),
    start_session TEXT NOT NULL,
    end_session TEXT,
    status TEXT NOT NULL,
    sessions INTEGER NOT NULL DEFAULT 0,
    candidate_sharpe REAL,
    production_sharpe REAL,
    p_value REAL,
    passed INTEGER
);
CREATE TABLE IF NOT EXISTS shadow_returns (
    run_id INTEGER NOT NULL REFERENCES shadow_runs(run_id),
    session TEXT NOT NULL,
    candidate REAL NOT NULL,
    production REAL NOT NULL,
    PRIMARY KEY (run_id, session)
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    recorded_at TEXT NOT NULL,
    sim_time TEXT NOT NULL,
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS audit_merkle (
    first_seq INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    day TEXT NOT NULL,
    count INTEGER NOT NULL,
    root TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_merkle_no_update BEFORE UPDATE ON audit_merkle
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_merkle_no_delete BEFORE DELETE ON audit_merkle
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(status, seq);
CREATE TABLE IF NOT EXISTS published_targets (symbol TEXT PRIMARY KEY, weight REAL NOT NULL);
"""

# TCA columns added after the OMS's first release; older databases lack them.
_TCA_SOURCES = (
    ("arrival_source", "TEXT NOT NULL DEFAULT ''"),
    ("vwap_source", "TEXT NOT NULL DEFAULT ''"),
)


def _tca_sources(conn: sqlite3.Connection) -> None:
    have = {row[1] for row in conn.execute("PRAGMA table_info(tca)")}
    for column, declaration in _TCA_SOURCES:
        if column not in have:
            conn.execute(f"ALTER TABLE tca ADD COLUMN {column} {declaration}")


# A decimal amount as text: digits, one sign, point and exponent; never empty or NaN.
_DECIMAL_TEXT = "{0} <> '' AND {0} NOT GLOB '*[^0-9.E+-]*' AND {0} GLOB '*[0-9]*'"

# Version 2: kill tier, cash and peak equity leave the key/value `meta` table for typed
# columns of a one-row table; the stored values move over unchanged (Decimal text keeps
# its exact digits), and their `meta` rows are removed.
_BOOK_STATE = f"""
CREATE TABLE book_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    kill_tier TEXT NOT NULL DEFAULT 'NORMAL'
        CHECK (kill_tier IN ('NORMAL', 'WARN', 'THROTTLE', 'NO_NEW', 'FLATTEN')),
    cash TEXT CHECK (cash IS NULL OR ({_DECIMAL_TEXT.format("cash")})),
    peak_equity TEXT CHECK (peak_equity IS NULL OR ({_DECIMAL_TEXT.format("peak_equity")}))
);
INSERT INTO book_state (id, kill_tier, cash, peak_equity) VALUES (
    1,
    coalesce((SELECT value FROM meta WHERE key = 'kill_tier'), 'NORMAL'),
    (SELECT value FROM meta WHERE key = 'cash'),
    (SELECT value FROM meta WHERE key = 'peak_equity')
);
DELETE FROM meta WHERE key IN ('kill_tier', 'cash', 'peak_equity');
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "every table as created before numbered migrations; adopts an older database",
        _BASELINE,
        _tca_sources,
    ),
    Migration("kill tier, cash and peak equity as typed columns of book_state", _BOOK_STATE),
)
LATEST = len(MIGRATIONS)


def version(conn: sqlite3.Connection) -> int:
    """The schema version of the database behind `conn` (0: never migrated)."""
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations `conn`'s database lacks; returns the version it is now at.

    Cheap when the database is current (one PRAGMA read), so every component that is
    handed a connection may call it. Runs in its own IMMEDIATE transaction, or inside
    the caller's if one is open. Raises StateSchemaError for a database from a newer qgtm.
    """
    if version(conn) == LATEST:
        return LATEST
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN IMMEDIATE")
    try:
        current = version(conn)  # again, under the write lock: another process may have won
        if current > LATEST:
            raise StateSchemaError(
                f"state.sqlite is at schema version {current}, newer than this qgtm "
                f"understands ({LATEST}); upgrade qgtm to open it"
            )
        for number in range(current + 1, LATEST + 1):
            MIGRATIONS[number - 1].apply(conn)
            conn.execute(f"PRAGMA user_version = {number}")
    except BaseException:
        if own:
            conn.execute("ROLLBACK")
        raise
    if own:
        conn.execute("COMMIT")
    return LATEST
