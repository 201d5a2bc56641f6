"""`qgtm status [--json]`: the book at a glance, read from state.sqlite.

It must answer in well under a second (issue 21) and never change the book, so it
opens state.sqlite read-only with the standard library's sqlite3 and imports no engine
module. The tables it reads are engine/state_schema.py's (meta, book_state, equity,
positions);
tests/cli/test_status.py reads a book the engine wrote, so a schema change that breaks
this query fails there.
"""

from __future__ import annotations

import argparse
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

from qgtm.cli import CliError
from qgtm.cli.config import load
from qgtm.cli.output import print_json

STATE_DB = "state.sqlite"  # engine/state.py STATE_DB; not imported, to stay light


@dataclass(frozen=True, slots=True)
class PositionLine:
    """One holding as the status shows it."""

    symbol: str
    quantity: int
    avg_price: float
    last_price: float


@dataclass(frozen=True, slots=True)
class BookStatus:
    """What `qgtm status` prints: the last session, its equity, the kill tier."""

    data_dir: str
    last_session: str | None
    equity: float | None
    kill_tier: str
    sessions: int
    positions: list[PositionLine]


def read_status(data_dir: Path) -> BookStatus:
    """The book's status from `data_dir`/state.sqlite, opened read-only."""
    path = data_dir / STATE_DB
    if not path.exists():
        raise CliError(f"no book in {data_dir} yet: run `qgtm` or `qgtm --daemon` first")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise CliError(f"cannot open {path}: {exc}") from None
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        tier = _kill_tier(conn, meta)
        last = conn.execute("SELECT equity FROM equity ORDER BY session DESC LIMIT 1").fetchone()
        sessions = conn.execute("SELECT count(*) FROM equity").fetchone()[0]
        rows = conn.execute(
            "SELECT symbol, quantity, avg_price, last_price FROM positions ORDER BY symbol"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise CliError(f"{path} is not a QGTM book ({exc})") from None
    finally:
        conn.close()
    return BookStatus(
        data_dir=str(data_dir),
        last_session=meta.get("last_session") or None,
        equity=None if last is None else float(last[0]),
        kill_tier=tier,
        sessions=int(sessions),
        positions=[PositionLine(s, int(q), float(a), float(p)) for s, q, a, p in rows],
    )


def _kill_tier(conn: sqlite3.Connection, meta: dict[str, str]) -> str:
    """The book's kill tier: `book_state` (state_schema migration 2), else the `meta`
    row of a book no engine of this version has opened yet."""
    has_book_state = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'book_state'"
    ).fetchone()
    if has_book_state:
        row = conn.execute("SELECT kill_tier FROM book_state WHERE id = 1").fetchone()
        if row is not None:
            return str(row[0])
    return meta.get("kill_tier") or "NORMAL"


def status_lines(status: BookStatus) -> list[str]:
    """The status as aligned lines for a terminal."""
    equity = "-" if status.equity is None else f"{status.equity:,.2f}"
    lines = [
        f"data dir     {status.data_dir}",
        f"last session {status.last_session or '-'}",
        f"equity       {equity}",
        f"kill tier    {status.kill_tier}",
        f"sessions     {status.sessions}",
    ]
    for p in status.positions:
        lines.append(
            f"  {p.symbol:<5} {p.quantity:>10,d}  avg {p.avg_price:>10.4f}  "
            f"last {p.last_price:>10.4f}"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    """`qgtm status`: lines for a person, or `--json` for machines."""
    _, data_dir = load(args)  # a bad config is reported here, as by every command
    status = read_status(data_dir)
    if getattr(args, "json", False):
        print_json(asdict(status))
    else:
        print("\n".join(status_lines(status)))
    return 0
