"""`qgtm audit verify | tail | search`: the hash-chained audit log of state.sqlite."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from qgtm.cli import CliError
from qgtm.cli.config import load


def run(args: argparse.Namespace) -> int:
    """Verify the chain (exit 1 when broken), or print the newest / matching records."""
    _, data_dir = load(args)
    return _audit(args, data_dir)


def _audit(args: argparse.Namespace, data_dir: Path) -> int:
    from qgtm.engine.audit import AuditLog
    from qgtm.engine.state import StateStore

    if not (data_dir / "state.sqlite").exists():
        raise CliError(f"no audit log in {data_dir} yet")
    try:
        state = StateStore(data_dir)
    except sqlite3.DatabaseError as exc:
        if args.audit_command == "verify":
            print(f"audit chain BROKEN at the database file: {exc}")
            return 1
        raise CliError(f"cannot read {data_dir / 'state.sqlite'}: {exc}") from None
    try:
        audit = AuditLog(state.conn)
        if args.audit_command == "verify":
            result = audit.verify_all()
            if result.ok:
                print(
                    f"audit chain intact: {result.records} records, "
                    f"{result.sealed_days} sealed days"
                )
                return 0
            where = f"record {result.first_bad}" if result.first_bad else "the database file"
            print(f"audit chain BROKEN at {where}: {result.reason}")
            return 1
        if args.audit_command == "search":
            records = audit.search(
                args.event, args.actor, args.text, args.since, args.until, args.n
            )
        else:
            records = audit.tail(args.n)
        for record in reversed(records):
            detail = " ".join(f"{k}={v}" for k, v in record.payload.items())
            print(
                f"{record.seq:>7} {record.sim_time} {record.event:<24} {record.actor:<8} {detail}"
            )
    finally:
        state.close()
    return 0
