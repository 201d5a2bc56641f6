"""Data: stored datasets (rows, span, last update, freshness, quality) and quality failures."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType

from qgtm.core.quality import DatasetStatus, QualityFailure
from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.formatting import day, number, quantity
from qgtm.tui.keymap import bind
from qgtm.tui.screens.base import TerminalScreen
from qgtm.tui.widgets.live_table import Column, Row
from qgtm.tui.widgets.table_panel import TablePanel

DATASET_COLUMNS = (
    Column("dataset", "Dataset", 12),
    Column("rows", "Rows", 9, "right"),
    Column("first", "First", 10, when="wide"),
    Column("last", "Last", 10),
    Column("age", "Age d", 6, "right", export="age_days"),
    Column("updated", "Last update (UTC)", 19, when="wide"),
    Column("status", "Quality", 8),
    Column("critical", "Crit", 5, "right"),
    Column("warnings", "Warn", 5, "right"),
)
FAILURE_COLUMNS = (
    Column("severity", "Severity", 8),
    Column("subject", "Dataset:subject", 34),
    Column("check", "Check", 10),
    Column("day", "Day", 10),
    Column("detail", "Detail"),
)
NO_DATASETS = "No provider data yet: run `qgtm data fetch SOURCE` or press r to refresh"
NO_FAILURES = "No quality failures: every check passed on the stored data"
RELOAD_EVERY_S = 2.0


def dataset_row(status: DatasetStatus) -> Row:
    """Cells for one dataset."""
    style = {"CRITICAL": "bold red", "FAILED": "bold red", "OK": "green"}.get(status.status, "")
    return status.dataset, (
        status.dataset,
        quantity(status.rows),
        day(status.first),
        day(status.last),
        number(status.freshness_days, "d"),
        status.last_update,
        Text(status.status, style=style),
        quantity(status.critical),
        quantity(status.warnings),
    )


def failure_row(failure: QualityFailure, index: int) -> Row:
    """Cells for one stored quality failure."""
    style = "bold red" if failure.severity.value == "CRITICAL" else "yellow"
    return f"{index}", (
        Text(failure.severity.value, style=style),
        f"{failure.dataset}:{failure.subject}",
        failure.check,
        day(failure.day),
        Text(failure.detail),
    )


class DataScreen(TerminalScreen):
    """Datasets and their quality; `r` runs the scheduled refresh now."""

    BINDINGS: ClassVar[list[BindingType]] = [bind("data.refresh", "refresh_data", "Refresh data")]

    def __init__(self) -> None:
        super().__init__()
        self._loaded_at = 0.0

    def compose_body(self) -> ComposeResult:
        """Datasets on top, quality failures below."""
        yield TablePanel("DATASETS", DATASET_COLUMNS, NO_DATASETS, id="datasets")
        yield TablePanel("QUALITY FAILURES", FAILURE_COLUMNS, NO_FAILURES, id="failures")

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Reload dataset status from the engine at most every RELOAD_EVERY_S seconds."""
        if time.monotonic() - self._loaded_at >= RELOAD_EVERY_S:
            self._loaded_at = time.monotonic()
            self.run_worker(self.reload(), exclusive=True, group="data-status")

    async def reload(self) -> None:
        """Ask the engine for dataset status and failures and show them."""
        client = self._qgtm_app.client
        statuses = await client.call("data.status")
        failures = await client.call("data.failures")
        self.query_one("#datasets", TablePanel).sync([dataset_row(s) for s in statuses])
        self.query_one("#failures", TablePanel).sync(
            [failure_row(f, i) for i, f in enumerate(failures)]
        )

    async def action_refresh_data(self) -> None:
        """Run the data refresh (all keyed sources) in the background, then reload."""
        self.notify("data refresh started")
        self.run_worker(self._refresh(), exclusive=True, group="data-refresh")

    async def _refresh(self) -> None:
        lines = await self._qgtm_app.client.call("data.refresh")
        self.notify("\n".join(lines) or "nothing refreshed", timeout=8)
        await self.reload()
