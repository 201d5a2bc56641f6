"""Research: backtest a strategy over a window in the background, chart it, compare runs.

Keys: pick the strategy (Tab to the selector, Enter, arrows, Enter), optionally type
parameter overrides ("lookback=126 skip=21"; one may be a range, "lookback=21:126:21",
to sweep it: the best value's run is shown, the sweep table replaces the monthly one;
"--impact 10 --borrow 50 --kill-reset daily" set this run's costs and kill reset, as
the CLI's flags) and the window's dates, then Enter in a field or ctrl+r runs it;
ctrl+g cancels it. Escape leaves a field for the tables, so the screen keys (1-9, ?, :)
work again. The engine runs the backtest in a process of its own
(`backtest.run`); this screen polls `backtest.status`, so the terminal stays responsive.
ctrl+o lists the data dir's stored runs (`qgtm backtest --runs`); the one picked becomes
the newest run. The two newest runs are compared side by side: statistics, and equity
and drawdown charts on one date axis (runs over different windows line up by date). The
newest run's monthly returns (%, compounded per year) sit beside the statistics.
Backtests use only sessions the engine has processed (never the demo replay's future
bars); with empty dates the window is all of them, which the status line names with its
session count as soon as the run is queued. A window too short for the statistics shown
(under a year; qgtm.engine.backtest.validation.MIN_RELIABLE_SESSIONS) is flagged in the
warning line under the status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.widgets import Input, Select, Static
from textual_plotext import PlotextPlot

from qgtm.core.backtest import (
    BACKTEST_FLAGS,
    COMPARED,
    MONTH_LABELS,
    BacktestError,
    compact_percent,
    kill_switch_cell,
    monthly_rows,
    params_text,
    parse_param,
    parse_sweep,
    stat_text,
)
from qgtm.core.results import BacktestJobStatus
from qgtm.core.snapshot import EngineSnapshot
from qgtm.tui.formatting import Datum, number
from qgtm.tui.keymap import bind
from qgtm.tui.screens.base import TerminalScreen
from qgtm.tui.themes import AMBER
from qgtm.tui.widgets.live_table import Column, Row
from qgtm.tui.widgets.run_picker import RunPicker
from qgtm.tui.widgets.table_panel import TablePanel

POLL_SECONDS = 0.2
STAT_COLUMNS = (
    Column("stat", "Statistic", 22),
    Column("a", "Latest run", 17, "right"),
    Column("b", "Previous run", 17, "right"),
)
MONTH_COLUMNS = (  # no cell padding (see on_mount): a space leads each 4-character value
    Column("year", "Year", 4),
    *(Column(m.lower(), m, 5, "right") for m in MONTH_LABELS),
    Column("total", "Total", 6, "right"),
)
SWEEP_COLUMNS = (
    Column("value", "Value", 8, "right"),
    Column("sharpe", "Sharpe", 8, "right"),
    Column("cagr", "CAGR", 8, "right"),
    Column("dd", "Max DD", 8, "right", export="max_drawdown"),
    Column("booking", "Booked", 24),
)
NO_RUNS = "No runs yet: pick a strategy and a window, then press Enter or ctrl+r"
NO_MONTHS = "Monthly returns of the newest run appear here"
WIDE_WIDTH = 140  # the stats (66) and monthly (74) panels side by side; narrower: ctrl+t
DATE_FORM = "Y-m-d"  # plotext's spelling of %Y-%m-%d, the curves' date strings
SECOND_COLOUR = (90, 170, 250)
STATS: tuple[tuple[str, str, str], ...] = (
    ("strategy", "Strategy", "text"),
    ("params", "Parameters", "text"),
    ("start", "From", "text"),
    ("end", "To", "text"),
    ("sessions", "Sessions", "count"),
    # the headline statistics `qgtm backtest --compare` lists, with capitalised labels
    *((key, label[0].upper() + label[1:], kind) for key, label, kind in COMPARED),
)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _flat(run: dict[str, Any]) -> dict[str, Any]:
    report = run["report"]
    out = {**report, **report.get("relative", {}), **report.get("trips", {}), **run["validation"]}
    out["strategy"] = run["strategy"]
    out["start"], out["end"] = run["start"], run["end"]
    out["params"] = params_text(run["params"])
    out["final_equity"] = run["final_equity"]
    out["trades"] = run["trades"]
    out["kill_switch"] = kill_switch_cell(report)
    return out


def _cell(value: Any, kind: str) -> Text | str:
    """A stats-table cell: text as it is, numbers right-aligned, percents signed."""
    text = stat_text(value, kind, signed=True)
    return text if kind == "text" else Text(text, justify="right")


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What the parameters field asks for: parameter values, at most one swept range and
    the run's [backtest] overrides (--impact, --borrow, --kill-reset, as the CLI's)."""

    params: dict[str, float] = field(default_factory=dict)
    sweep: str | None = None
    flags: dict[str, str] = field(default_factory=dict)


def _window_text(job: BacktestJobStatus) -> str:
    """'over 2008-01-02..2012-12-31 (1,000 sessions after warm-up)' from a queued job."""
    request = job.request
    window = request.get("window")
    if not window:  # an engine from before jobs named their window
        return f"on bars up to {request['data_until']}"
    return f"over {window[0]}..{window[1]} ({request['sessions']:,} sessions after warm-up)"


def _cancelled(job: BacktestJobStatus) -> str:
    return f"Cancelled {job.request['strategy']} (job {job.job})"


def parse_params(text: str) -> RunRequest:
    """'lookback=126 skip=21' (spaces or commas between) -> params {'lookback': 126.0, ...};
    one entry may be a range, 'lookback=21:126:21', swept as `qgtm backtest --sweep`;
    '--impact 10', '--borrow=50', '--kill-reset daily' as the CLI's flags. BacktestError
    naming the bad entry."""
    params: dict[str, float] = {}
    sweeps = []
    flags: dict[str, str] = {}
    entries = iter(text.replace(",", " ").split())
    for entry in entries:
        if entry.startswith("--"):
            flag, _, value = entry.partition("=")
            if flag not in BACKTEST_FLAGS:
                raise BacktestError(f"unknown option {flag}: want {', '.join(BACKTEST_FLAGS)}")
            flags[flag] = value or next(entries, "")
            if not flags[flag]:
                raise BacktestError(f"{flag} needs a value")
            continue
        if entry.count(":") == 2:
            parse_sweep(entry)  # a bad range fails here, with its own message
            sweeps.append(entry)
            continue
        try:
            key, value = parse_param(entry)
        except BacktestError:
            raise BacktestError(
                f"bad parameter {entry!r}: want NAME=NUMBER or NAME=LOW:HIGH:STEP"
            ) from None
        params[key] = value
    if len(sweeps) > 1:
        raise BacktestError(f"one swept parameter at a time, not {len(sweeps)}")
    return RunRequest(params, sweeps[0] if sweeps else None, flags)


def sweep_rows(run: dict[str, Any]) -> list[Row]:
    """One row per swept value: value, Sharpe, CAGR, max drawdown, how it was booked."""
    rows = []
    for row in run.get("sweep") or []:
        key = next(iter(row))
        value = row[key]
        rows.append(
            (
                f"{key}={value}",
                (
                    number(value, "g"),
                    number(row["sharpe"], ".3f"),
                    number(row["cagr"], "+.2%", "frac"),
                    number(row["max_drawdown"], ".2%", "frac"),
                    str(row["booking"]),
                ),
            )
        )
    return rows


def _month_cell(fraction: float | None) -> Datum:
    return Datum(compact_percent(fraction), fraction, unit="frac", justify="right")


def month_rows(run: dict[str, Any]) -> list[Row]:
    """The run's monthly returns table, newest year first: Year, Jan..Dec, Total (%)."""
    rows = monthly_rows(run["report"]["monthly_returns"])
    return [
        (str(year), (number(year, "d"), *(_month_cell(v) for v in values)))
        for year, values in reversed(rows)
    ]


def stat_rows(runs: list[dict[str, Any]]) -> list[Row]:
    """One row per statistic, newest run first, then the one before."""
    flats = [_flat(r) for r in runs[:2]]
    rows = []
    for key, label, kind in STATS:
        cells = [_cell(f.get(key), kind) for f in flats] + [""] * (2 - len(flats))
        rows.append((key, (label, *cells)))
    return rows


class ResearchScreen(TerminalScreen):
    """Backtests from the keyboard, charts and a side-by-side stats table."""

    BINDINGS: ClassVar[list[BindingType]] = [
        bind("research.run", "run_backtest", "Run backtest", priority=True),
        bind("research.switch_tables", "toggle_months", "Stats/Monthly", priority=True),
        bind("research.stored_runs", "open_stored", "Stored runs", priority=True),
        bind("research.cancel", "cancel_backtest", "Cancel", priority=True),
        bind("research.leave_field", "leave_field", "Leave field", show=False),
    ]
    DEFAULT_CSS = """
    ResearchScreen #research-form { height: 3; }
    ResearchScreen #strategy { width: 25; }
    ResearchScreen #params { width: 1fr; }
    ResearchScreen #research-form Input { padding: 0 1; }
    ResearchScreen #start, ResearchScreen #end { width: 19; }
    ResearchScreen #research-status { height: 1; padding: 0 1; }
    ResearchScreen #research-warning {
        height: auto; padding: 0 1; display: none; color: $warning; text-style: bold;
    }
    ResearchScreen #research-warning.-shown { display: block; }
    ResearchScreen #research-charts { height: 1fr; min-height: 10; }
    ResearchScreen #research-charts PlotextPlot { width: 1fr; }
    ResearchScreen #research-tables { height: auto; max-height: 25; }
    ResearchScreen #research-stats { width: 66; height: auto; max-height: 25; }
    ResearchScreen #research-months { width: 1fr; height: auto; max-height: 25; }
    ResearchScreen #research-sweep { width: 1fr; height: auto; max-height: 25; display: none; }
    ResearchScreen.-sweep #research-months { display: none; }
    ResearchScreen.-sweep #research-sweep { display: block; }
    ResearchScreen.-narrow #research-stats { width: 1fr; }
    ResearchScreen.-narrow #research-months { display: none; }
    ResearchScreen.-narrow #research-sweep { display: none; }
    ResearchScreen.-narrow.-months #research-stats { display: none; }
    ResearchScreen.-narrow.-months #research-months { display: block; }
    ResearchScreen.-narrow.-months.-sweep #research-months { display: none; }
    ResearchScreen.-narrow.-months.-sweep #research-sweep { display: block; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[dict[str, Any]] = []
        self.pending: int | None = None
        self.status_text = "Pick a strategy and a window"

    def compose_body(self) -> ComposeResult:
        """Form, status line, equity + drawdown charts, stats and monthly tables."""
        with Vertical():
            with Horizontal(id="research-form"):
                yield Select[str]([], prompt="strategy", id="strategy")
                yield Input(placeholder="params k=v …", id="params")
                # 15 characters: whole in a 19-wide field (border and padding take 4);
                # a longer hint wraps in the field and shows only its first word
                yield Input(placeholder="from YYYY-MM-DD", id="start")
                yield Input(placeholder="to   YYYY-MM-DD", id="end")
            yield Static(self.status_text, id="research-status", markup=False)
            yield Static("", id="research-warning", markup=False)
            with Horizontal(id="research-charts"):
                yield PlotextPlot(id="equity-plot")
                yield PlotextPlot(id="drawdown-plot")
            with Horizontal(id="research-tables"):
                yield TablePanel("RUNS", STAT_COLUMNS, NO_RUNS, id="research-stats")
                yield TablePanel("MONTHLY %", MONTH_COLUMNS, NO_MONTHS, id="research-months")
                yield TablePanel("SWEEP", SWEEP_COLUMNS, "", id="research-sweep")

    async def on_mount(self) -> None:
        """Fill the strategy list from the engine and start polling."""
        super().on_mount()
        names = await self._qgtm_app.client.call("backtest.strategies")
        select = self.query_one("#strategy", Select)
        select.set_options((name, name) for name in names)
        self.query_one("#research-months", TablePanel).table.cell_padding = 0
        self._draw()
        self.set_interval(POLL_SECONDS, self._poll, name="research-poll")

    def on_resize(self, event: Resize) -> None:
        """Side by side when both tables fit; else one at a time (ctrl+t switches)."""
        self.set_class(event.size.width < WIDE_WIDTH, "-narrow")

    def action_leave_field(self) -> None:
        """Hand the keys back from a form field to the table on show (stats, monthly or
        sweep), so the app's keys work again; with none on show, to the screen itself."""
        if not isinstance(self.focused, Input | Select):
            return
        for panel in self.query(TablePanel):
            if panel.display and panel.table.display and panel.region.width > 0:
                panel.table.focus()
                return
        self.set_focus(None)

    def action_toggle_months(self) -> None:
        """Narrow terminals: show the monthly returns in place of the stats, or back."""
        self.toggle_class("-months")

    def show_body(self, snapshot: EngineSnapshot) -> None:
        """The research body does not follow the replay; only the banner does."""

    def _set_status(self, text: str) -> None:
        self.status_text = text
        self.query_one("#research-status", Static).update(text)

    async def on_input_submitted(self, _event: Input.Submitted) -> None:
        """Enter in the parameters or a date field runs the backtest."""
        await self.action_run_backtest()

    async def action_run_backtest(self) -> None:
        """Queue a backtest of the selected strategy over the typed window."""
        select = self.query_one("#strategy", Select)
        if select.value is Select.BLANK or select.value is None:
            self._set_status("Pick a strategy first")
            return
        start = self.query_one("#start", Input).value.strip() or None
        end = self.query_one("#end", Input).value.strip() or None
        try:
            asked = parse_params(self.query_one("#params", Input).value)
            job = await self._qgtm_app.client.call(
                "backtest.run",
                strategy=str(select.value),
                start=start,
                end=end,
                params=asked.params,
                sweep=asked.sweep,
                flags=asked.flags,
            )
        except Exception as exc:  # the engine's message is the user's answer
            self._set_status(f"Cannot run: {exc}")
            return
        self.pending = job.job
        self._set_status(f"Running {select.value} (job {self.pending}) {_window_text(job)}")

    async def action_cancel_backtest(self) -> None:
        """Stop the backtest this screen is waiting for (`backtest.cancel`)."""
        if self.pending is None:
            self._set_status("No backtest running")
            return
        try:
            job = await self._qgtm_app.client.call("backtest.cancel", job=self.pending)
        except Exception as exc:  # e.g. it finished meanwhile: the next poll shows it
            self._set_status(f"Cannot cancel: {exc}")
            return
        self.pending = None
        self._set_status(_cancelled(job))

    async def action_open_stored(self) -> None:
        """Pick a stored run (any earlier backtest of this data dir) to compare with."""
        rows = await self._qgtm_app.client.call("backtest.stored")
        if not rows:
            self._set_status("No stored runs yet: run a backtest first")
            return
        self.app.push_screen(RunPicker(rows), self._load_stored)

    async def _load_stored(self, run: str | None) -> None:
        if run is None:
            return
        try:
            result = await self._qgtm_app.client.call("backtest.load", run=run)
        except Exception as exc:  # the engine's message is the user's answer
            self._set_status(f"Cannot load {run}: {exc}")
            return
        self._show(result)
        self._set_status(f"Loaded {run} (stored {result['artifact']})")

    def _show(self, result: dict[str, Any]) -> None:
        """Make `result` the newest run: tables and charts."""
        self.runs.insert(0, result)
        self.query_one("#research-stats", TablePanel).sync(stat_rows(self.runs))
        months = self.query_one("#research-months", TablePanel)
        months.sync(month_rows(result))
        months.border_title = f"MONTHLY % {result['strategy']}"
        swept = self.query_one("#research-sweep", TablePanel)
        swept.sync(sweep_rows(result))
        if result.get("sweep"):
            key = next(iter(result["sweep"][0]))
            swept.border_title = f"SWEEP {key}: best {result['params'][key]:g}"
        self.set_class(bool(result.get("sweep")), "-sweep")
        self._show_warnings()
        self._draw()

    def _show_warnings(self) -> None:
        """The compared runs' window warnings (e.g. too few sessions for a Sharpe)."""
        lines = [
            f"{label}: {warning}"
            for label, run in zip(("Latest run", "Previous run"), self.runs[:2], strict=False)
            for warning in run.get("warnings", ())
        ]
        line = self.query_one("#research-warning", Static)
        line.update("\n".join(lines))
        line.set_class(bool(lines), "-shown")

    async def _poll(self) -> None:
        if self.pending is None:
            return
        job = await self._qgtm_app.client.call("backtest.status", job=self.pending)
        if job.state in ("queued", "running"):
            unit = "steps" if job.request.get("sweep") else "sessions"
            progress = (
                f"{job.done:,}/{job.total:,} {unit} ({job.done / job.total:.0%})"
                if job.total
                else "starting"  # a sweep knows its steps once its process runs
            )
            window = job.request.get("window")
            over = f" over {window[0]}..{window[1]}" if window else ""
            self._set_status(f"Running {job.request['strategy']}{over}: {progress}")
            return
        self.pending = None
        if job.state == "failed":
            self._set_status(f"Backtest failed: {job.error}")
            return
        if job.state == "cancelled":  # by another client attached to the engine
            self._set_status(_cancelled(job))
            return
        result = job.result
        self._show(result)
        settings = result["config"]["settings"]
        costs = settings["costs"]
        self._set_status(
            f"Done: {result['strategy']} Sharpe {result['report']['sharpe']:.2f} · "
            # what [backtest] adds to the live book's costs and risk rules
            f"impact {costs['impact_bps_at_full_adv']:g}bp, borrow "
            f"{costs['borrow_bps_annual']:g}bp/yr, kill reset {settings['kill_reset']}"
            f" -> {result['artifact']}"
        )

    def _draw(self) -> None:
        for widget_id, key, title in (
            ("#equity-plot", "curve", "Equity"),
            ("#drawdown-plot", "drawdown", "Drawdown"),
        ):
            plot = self.query_one(widget_id, PlotextPlot)
            plt = plot.plt
            plt.clear_figure()
            plt.frame(False)
            plt.date_form(DATE_FORM)
            plt.title(title if self.runs else f"{title}: no runs yet")
            for run, colour in zip(self.runs[:2], (_rgb(AMBER), SECOND_COLOUR), strict=False):
                days = [day for day, _ in run[key]]
                values = [v for _, v in run[key]]
                plt.plot(days, values, color=colour, marker="braille")
            plot.refresh()
