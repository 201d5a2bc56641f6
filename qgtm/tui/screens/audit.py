"""Audit: the append-only audit log, newest first, with keyboard filters.

`/` focuses the text filter (Enter applies), `e` cycles the event type, `a` cycles the
actor, `c` clears every filter. With a filter set the screen searches the whole log
through the engine's `audit.search` command, not only the latest records.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Input, Static

from qgtm.core.snapshot import AuditPage, AuditRow, EngineSnapshot
from qgtm.tui.formatting import quantity, timestamp
from qgtm.tui.keymap import bind
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
NO_MATCH = "No audit record matches the filters (c clears them)"
EVENT_TYPES = (
    None,
    "ORDER_SUBMITTED",
    "ORDER_FILLED",
    "RISK_CUT",
    "TIER_CHANGE",
    "EMERGENCY_FLATTEN",
    "RECON_DISCREPANCY",
    "RECON_COMPLETE",
    "OPERATOR_ACTION",
    "CONFIG_CHANGED",
    "TASK_FAILED",
)
ACTORS = (None, "engine", "risk", "recon", "watchdog", "daemon")


def audit_row(record: AuditRow) -> Row:
    """Cells for one audit record, keyed by its sequence number."""
    return str(record.seq), (
        quantity(record.seq),
        timestamp(record.sim_time),
        record.event,
        record.actor,
        Text(record.detail),
    )


class AuditScreen(TerminalScreen):
    """Recent audit records, newest first, filterable by event, actor and text."""

    AUTO_FOCUS = "LiveTable"
    BINDINGS: ClassVar[list[BindingType]] = [
        bind("audit.filter", "focus_filter", "Filter"),
        bind("audit.leave_filter", "leave_filter", "Back", show=False),
        bind("audit.event", "cycle_event", "Event"),
        bind("audit.actor", "cycle_actor", "Actor"),
        bind("audit.clear", "clear_filters", "Clear"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.event_index = 0
        self.actor_index = 0
        self.text = ""
        self.matches: tuple[AuditRow, ...] | None = None
        self._records: dict[str, AuditRow] = {}

    @property
    def event(self) -> str | None:
        """The event type filter (None = all)."""
        return EVENT_TYPES[self.event_index]

    @property
    def actor(self) -> str | None:
        """The actor filter (None = all)."""
        return ACTORS[self.actor_index]

    @property
    def filtering(self) -> bool:
        """True while any filter is set."""
        return bool(self.event or self.actor or self.text)

    def compose_body(self) -> ComposeResult:
        """Filter line, then one full-height audit table."""
        yield Input(placeholder="text filter: / to type, Enter to apply", id="audit-text")
        yield Static(self._filter_line(), id="audit-filters")
        yield TablePanel("AUDIT LOG", AUDIT_COLUMNS, NO_AUDIT, id="audit")
        # the detail column shows the start of a payload; the whole one goes here
        yield Static("", id="audit-detail", classes="panel", markup=False)

    def _filter_line(self) -> str:
        return (
            f"event: {self.event or 'all'} (e) · actor: {self.actor or 'all'} (a) · "
            f"text: {self.text or '-'} (/) · c clears"
        )

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Sync the table: the snapshot's records, or the search results when filtering."""
        if self.filtering:
            self._run_search()
            return
        self._show_rows(snapshot.recent_audit)

    def _show_rows(self, rows: tuple[AuditRow, ...]) -> None:
        self.query_one("#audit-filters", Static).update(self._filter_line())
        panel = self.query_one("#audit", TablePanel)
        panel.query_one(".empty-state", Static).update(NO_MATCH if self.filtering else NO_AUDIT)
        panel.sync([audit_row(r) for r in rows])
        self._records = {str(r.seq): r for r in rows}
        keys = panel.table.row_keys
        if keys:
            self._show_detail(keys[max(0, min(panel.table.cursor_row, len(keys) - 1))])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Show the highlighted record's detail whole."""
        if event.row_key.value is not None:
            self._show_detail(str(event.row_key.value))

    def _show_detail(self, key: str) -> None:
        record = self._records.get(key)
        if record is None:
            return
        box = self.query_one("#audit-detail", Static)
        box.border_title = f"#{record.seq} {record.event} {record.actor}"
        box.update(record.detail or "-")

    @work(exclusive=True, group="audit-search")
    async def _run_search(self) -> None:
        page: AuditPage = await self._qgtm_app.client.call(
            "audit.search", event=self.event, actor=self.actor, text=self.text or None
        )
        self.matches = page.rows
        self._show_rows(page.rows)

    def _apply_filters(self) -> None:
        latest = self._qgtm_app.latest
        if self.filtering:
            self._run_search()
        elif latest is not None:
            self.matches = None
            self._show_rows(latest.recent_audit)

    def action_focus_filter(self) -> None:
        """Put the cursor in the text filter."""
        self.query_one("#audit-text", Input).focus()

    def action_leave_filter(self) -> None:
        """Hand the keys back to the table without applying the typed text."""
        self.query_one("#audit", TablePanel).table.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Apply the typed text filter and hand the keys back to the table."""
        self.text = event.value.strip()
        self.query_one("#audit", TablePanel).table.focus()
        self._apply_filters()

    def action_cycle_event(self) -> None:
        """Next event type (all -> ORDER_SUBMITTED -> ... -> all)."""
        self.event_index = (self.event_index + 1) % len(EVENT_TYPES)
        self._apply_filters()

    def action_cycle_actor(self) -> None:
        """Next actor (all -> engine -> risk -> ... -> all)."""
        self.actor_index = (self.actor_index + 1) % len(ACTORS)
        self._apply_filters()

    def action_clear_filters(self) -> None:
        """Back to the latest records."""
        self.event_index = self.actor_index = 0
        self.text = ""
        self.query_one("#audit-text", Input).value = ""
        self.query_one("#audit", TablePanel).clear_filter()
        self._apply_filters()
