"""Risk: kill tier and its history, limit usage bars, CVaR, vol, correlations, cuts.

Also the two-person reset flows (palette commands and the r / a keys): confirm what will
happen, then ask for the operator's name and passphrase, then call the engine.
"""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, HorizontalScroll
from textual.widgets import Static

from qgtm.core.enums import KillTier
from qgtm.core.risk_status import LimitUsage, RiskStatus
from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.keymap import bind
from qgtm.tui.screens.base import TerminalApp, TerminalScreen
from qgtm.tui.themes import GAIN, LOSS, MUTED
from qgtm.tui.widgets.confirm import ConfirmModal
from qgtm.tui.widgets.live_table import Column, Row
from qgtm.tui.widgets.operator_modal import OperatorModal
from qgtm.tui.widgets.table_panel import TablePanel

BAR_WIDTH = 20
HISTORY_COLUMNS = (
    Column("at", "Date", 10),
    Column("from", "From", 8),
    Column("to", "To", 8),
    Column("why", "Why"),
)
CUT_COLUMNS = (
    Column("at", "Date", 10),
    Column("kind", "Kind", 13),
    Column("symbol", "Symbol", 6),
    Column("detail", "Reason"),
)
NO_HISTORY = "No tier changes: the kill switch has stayed NORMAL"
NO_CUTS = "No orders cut or blocked"
LIMIT_LABELS = {
    "position": "Largest position",
    "sector": "Largest sector",
    "correlated": "Correlated group",
    "gross": "Gross leverage",
    "net": "Net leverage",
    "vol": "Vol (ex ante)",
    "cvar": "CVaR (daily)",
}


def usage_bar(usage: LimitUsage, width: int = BAR_WIDTH) -> Text:
    """`Gross leverage  ██████░░░░  0.60 / 1.50`: green < 75%, amber < 100%, red at the limit."""
    share = min(max(usage.usage, 0.0), 1.0)
    filled = round(share * width)
    style = GAIN if usage.usage < 0.75 else ("#ffd60a" if usage.usage < 1.0 else LOSS)
    text = Text(f"{LIMIT_LABELS.get(usage.name, usage.name):<17}")
    text.append("█" * filled, style=style)
    text.append("░" * (width - filled), style=MUTED)
    text.append(f" {usage.value:7.2%} / {usage.limit:.2%}")
    return text


def heat_colour(rho: float) -> str:
    """Red for strong positive correlation, blue for negative, dark near zero."""
    level = int(min(abs(rho), 1.0) * 200)
    return f"on rgb({level},0,0)" if rho >= 0 else f"on rgb(0,0,{level})"


def heat_map(status: RiskStatus) -> Table | Text:
    """Correlation of the holdings' daily returns as a coloured table."""
    if not status.correlation_symbols:
        return Text("Fewer than two holdings: no correlation map", style=MUTED)
    table = Table(box=None, padding=(0, 0), show_edge=False, caption="ρ × 100")
    table.add_column("", no_wrap=True, width=5)
    for symbol in status.correlation_symbols:
        table.add_column(symbol[:4], justify="right", no_wrap=True, width=5)
    for symbol, row in zip(status.correlation_symbols, status.correlations, strict=True):
        table.add_row(symbol, *(Text(f"{rho * 100:+4.0f} ", style=heat_colour(rho)) for rho in row))
    return table


def tier_summary(status: RiskStatus) -> Text:
    """The tier, the pending reset and the registered operators."""
    text = Text("Kill tier ")
    text.append(f" {status.tier.name} ", style="bold reverse")
    if status.pending_reset is not None:
        pending = status.pending_reset
        text.append(
            f"\nReset to NORMAL requested by {pending.requested_by} "
            f"(from {pending.from_tier}); waiting for a second operator [a]"
        )
    elif status.tier is not KillTier.NORMAL:
        text.append("\nNo reset pending: request one with [r]")
    operators = ", ".join(status.operators) or "none (palette: risk: Add operator)"
    text.append(f"\nOperators: {operators}", style=MUTED)
    text.append(
        f"\nCVaR hist {status.cvar_historical:.2%} · param {status.cvar_parametric:.2%}"
        f" · limit {status.cvar_limit:.2%}"
    )
    text.append(
        f"\nVol target {status.vol_target:.1%} · ex ante {status.vol_ex_ante:.1%}"
        f" · realised {status.vol_realised:.1%}"
    )
    return text


class RiskScreen(TerminalScreen):
    """Everything the risk manager knows, and the reset keys."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("risk.request_reset", "request_reset", "Request reset"),
        bind("risk.approve_reset", "approve_reset", "Approve reset"),
    ]
    AUTO_FOCUS = "#risk-history LiveTable"  # the heat map scrolls, but is not the start
    DEFAULT_CSS = """
    RiskScreen #risk-top { height: auto; }
    RiskScreen #risk-tier, RiskScreen #risk-limits { width: 1fr; height: auto; }
    RiskScreen #risk-heat-box { height: auto; }
    RiskScreen #risk-heat { width: auto; height: auto; }
    """

    def compose_body(self) -> ComposeResult:
        """Tier + limits on top, heat map, then tier history and cuts."""
        with Horizontal(id="risk-top"):
            yield Static("", id="risk-tier", classes="panel")
            yield Static("", id="risk-limits", classes="panel")
        # the map keeps its 5-column cells and scrolls sideways on narrow screens
        with HorizontalScroll(id="risk-heat-box", classes="panel"):
            yield Static("", id="risk-heat")
        with Horizontal():
            yield TablePanel("TIER HISTORY", HISTORY_COLUMNS, NO_HISTORY, id="risk-history")
            yield TablePanel("CUT / BLOCKED ORDERS", CUT_COLUMNS, NO_CUTS, id="risk-cuts")

    def on_mount(self) -> None:
        """Titles, then the base catch-up."""
        self.query_one("#risk-tier").border_title = "KILL SWITCH"
        self.query_one("#risk-limits").border_title = "LIMITS"
        self.query_one("#risk-heat-box").border_title = "CORRELATION OF HOLDINGS"
        super().on_mount()

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """Render the snapshot's RiskStatus."""
        status = snapshot.risk
        if status is None:
            return
        self.query_one("#risk-tier", Static).update(tier_summary(status))
        self.query_one("#risk-limits", Static).update(
            Text("\n").join(usage_bar(u) for u in status.limits)
        )
        self.query_one("#risk-heat", Static).update(heat_map(status))
        count = len(status.tier_history)
        self.query_one("#risk-history", TablePanel).sync(
            [
                (f"{count - i}", (h.at, h.from_tier, h.to_tier, Text(h.detail)))
                for i, h in enumerate(status.tier_history)
            ]
        )
        self.query_one("#risk-cuts", TablePanel).sync(_cut_rows(status))

    def action_request_reset(self) -> None:
        """r: the request flow."""
        self.app.run_worker(request_reset(self._qgtm_app), group="risk", exclusive=True)

    def action_approve_reset(self) -> None:
        """a: the approval flow."""
        self.app.run_worker(approve_reset(self._qgtm_app), group="risk", exclusive=True)


def _cut_rows(status: RiskStatus) -> list[Row]:
    count = len(status.cuts)
    return [
        (f"{count - i}", (c.at, c.kind, c.symbol, Text(c.detail)))
        for i, c in enumerate(status.cuts)
    ]


# ----- the two-person reset flows (run as workers: they wait on modals) ------------------
async def request_reset(app: TerminalApp) -> None:
    """Confirm, identify, then ask the engine to register a reset request."""
    status: RiskStatus = await app.client.call("risk.status")
    if status.tier is KillTier.NORMAL:
        app.notify("Kill tier is NORMAL: nothing to reset", severity="warning")
        return
    details = [
        f"Asks to return the kill tier from {status.tier.name} to NORMAL",
        "Nothing changes yet: a second, different operator must approve",
        "Your passphrase is checked and never stored or shown",
    ]
    if not await app.push_screen_wait(
        ConfirmModal("Request kill-switch reset", details, "Request")
    ):
        return
    who = await app.push_screen_wait(OperatorModal("Requesting operator"))
    if who is None:
        return
    result = await app.client.call("risk.request_reset", operator=who[0], passphrase=who[1])
    app.notify(result.message, severity="information" if result.ok else "error")
    app.poll_snapshot()


async def approve_reset(app: TerminalApp) -> None:
    """Confirm exactly what the approval does, identify, then approve in the engine."""
    status: RiskStatus = await app.client.call("risk.status")
    pending = status.pending_reset
    if pending is None:
        app.notify("No reset request is pending", severity="warning")
        return
    details = [
        f"Kill tier {status.tier.name} -> NORMAL: new positions allowed at full size again",
        f"Requested by {pending.requested_by} at {pending.requested_at[:19]}",
        f"You must be a different operator than {pending.requested_by}",
        "The drawdown peak is re-based to the latest equity",
    ]
    if not await app.push_screen_wait(
        ConfirmModal("Approve kill-switch reset", details, "Approve")
    ):
        return
    who = await app.push_screen_wait(OperatorModal("Approving operator"))
    if who is None:
        return
    result = await app.client.call("risk.approve_reset", approver=who[0], passphrase=who[1])
    app.notify(result.message, severity="information" if result.ok else "error")
    app.poll_snapshot()


async def add_operator(app: TerminalApp) -> None:
    """Register an operator: name and passphrase (typed twice, masked), then the engine."""
    who = await app.push_screen_wait(OperatorModal("New operator", repeat_passphrase=True))
    if who is None:
        return
    try:
        result = await app.client.call("risk.add_operator", operator=who[0], passphrase=who[1])
    except ValueError as exc:  # OperatorError: bad name, short passphrase, taken name
        app.notify(str(exc), severity="error")
        return
    app.notify(result.message)
    app.poll_snapshot()
