"""Audit: the latest records of the append-only audit log."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult

from qgtm.core.snapshot import AuditRow, EngineSnapshot
from qgtm.tui.screens.base import TerminalScreen
from qgtm.tui.widgets.live_table import Column, Row
from qgtm.tui.widgets.table_panel import TablePanel

AUDIT_COLUMNS = (
    Column("seq", "Seq", 7, "right"),
    Column("time", "Sim time", 19),
    Column("event", "Event", 18),
    Column("actor", "Actor", 12),
    Column("detail", "Detail"),
)
NO_AUDIT = "No audit records yet: the engine writes one for every decision, order and fill"


def audit_row(record: AuditRow) -> Row:
    """Cells for one audit record, keyed by its sequence number."""
    return str(record.seq), (
        Text(f"{record.seq:,}", justify="right"),
        record.sim_time,
        record.event,
        record.actor,
        Text(record.detail),
    )


class AuditScreen(TerminalScreen):
    """Recent audit records, newest first."""

    def compose_body(self) -> ComposeResult:
        """One full-height audit table."""
        yield TablePanel("AUDIT LOG", AUDIT_COLUMNS, NO_AUDIT, id="audit")

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Sync the table with the snapshot's recent audit records."""
        self.query_one("#audit", TablePanel).sync([audit_row(r) for r in snapshot.recent_audit])
