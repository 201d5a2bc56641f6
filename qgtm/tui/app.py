"""The QGTM terminal: one App that wires the engine client to its screens."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from textual.app import App, ScreenStackError
from textual.binding import Binding, BindingType

from qgtm.core.paths import default_data_dir
from qgtm.core.protocol import EngineClient
from qgtm.core.snapshot import EngineSnapshot
from qgtm.core.universe import load_universe
from qgtm.tui.commands import MnemonicCommands, TerminalCommands
from qgtm.tui.keymap import bind, check_keymap
from qgtm.tui.latency import freeze_startup_heap
from qgtm.tui.mnemonics import Mnemonic, Target, mnemonic_table
from qgtm.tui.screens.audit import AuditScreen
from qgtm.tui.screens.base import ScreenSlot, TerminalScreen
from qgtm.tui.screens.data import DataScreen
from qgtm.tui.screens.help import HelpScreen
from qgtm.tui.screens.monitor import MonitorScreen
from qgtm.tui.screens.orders import OrdersScreen
from qgtm.tui.screens.portfolio import PortfolioScreen
from qgtm.tui.screens.recon import ReconScreen
from qgtm.tui.screens.regime import RegimeScreen
from qgtm.tui.screens.research import ResearchScreen
from qgtm.tui.screens.risk import RiskScreen
from qgtm.tui.screens.security import SecurityScreen
from qgtm.tui.screens.signals import SignalsScreen
from qgtm.tui.screens.strategies import StrategiesScreen
from qgtm.tui.themes import (
    DEFAULT_THEME,
    TERMINAL_CSS,
    THEMES,
    UnknownThemeError,
    activate_palette,
    qgtm_variables,
    save_theme,
    saved_theme,
    theme_choice_file,
)
from qgtm.tui.widgets.banner import attached_text
from qgtm.tui.widgets.command_line import CommandLine
from qgtm.tui.widgets.confirm import ConfirmModal
from qgtm.tui.widgets.operator_modal import OperatorModal
from qgtm.tui.widgets.run_picker import RunPicker
from qgtm.tui.widgets.table_panel import TablePanel

REFRESH_HZ = 4.0
"""How often the app reads the engine's snapshot."""
STEP_RENDER_INTERVAL = 0.5
"""While the replay runs, new sessions are drawn at most this often (seconds); pause,
speed and kill-tier changes are drawn at the next poll. Drawing every step of a fast
replay costs the key path frames no one can read."""


SCREEN_SLOTS = (
    ScreenSlot("monitor", "Monitor", MonitorScreen, "1,f1", ("MON",)),
    ScreenSlot("orders", "Orders", OrdersScreen, "2,f2", ("ORD", "TCA")),
    ScreenSlot("audit", "Audit", AuditScreen, "3,f3", ("AUD",)),
    ScreenSlot("portfolio", "Portfolio", PortfolioScreen, "9,f9", ("PORT",)),
    ScreenSlot("signals", "Signals", SignalsScreen, "0,f10", ("SIG",)),
    ScreenSlot("regime", "Regime", RegimeScreen, "", ("REGIME",)),
    ScreenSlot("security", "Security", SecurityScreen, "", ("SEC",)),
    ScreenSlot("help", "Help", HelpScreen, "question_mark,f11", ("HELP",)),
    ScreenSlot("risk", "Risk", RiskScreen, "4,f4", ("RISK",)),
    ScreenSlot("research", "Research", ResearchScreen, "5,f5", ("BT",)),
    ScreenSlot("strategies", "Strategies", StrategiesScreen, "6,f6", ("STRAT",)),
    ScreenSlot("recon", "Recon", ReconScreen, "7,f7", ("RECON",)),
    ScreenSlot("data", "Data", DataScreen, "8,f8", ("DATA",)),
)

# Honest empty states until each owner's screen lands. A real slot with the same mode or
# mnemonic replaces its placeholder automatically; then delete the placeholder's line.
PLACEHOLDER_SLOTS: tuple[ScreenSlot, ...] = ()
"""Screens whose owner has not landed yet; every one has, so none are left."""


def effective_slots(
    slots: Iterable[ScreenSlot], placeholders: Iterable[ScreenSlot]
) -> tuple[ScreenSlot, ...]:
    """Real slots, then the placeholders no real slot has taken over (by mode or mnemonic).

    A real slot declared without mnemonics inherits those of the placeholder it replaces.
    """
    real = list(slots)
    placeholders = list(placeholders)
    by_mode = {p.mode: p for p in placeholders}
    real = [
        replace(s, mnemonics=by_mode[s.mode].mnemonics)
        if not s.mnemonics and s.mode in by_mode
        else s
        for s in real
    ]
    modes = {s.mode for s in real}
    words = {w for s in real for w in s.mnemonics}
    keys = {k for s in real for k in s.keys.split(",") if k}
    kept = [
        p
        for p in placeholders
        if p.mode not in modes
        and not words & set(p.mnemonics)
        and not keys & set(p.keys.split(","))
    ]
    return (*real, *kept)


ALL_SLOTS = effective_slots(SCREEN_SLOTS, PLACEHOLDER_SLOTS)


def _slot_bindings(slots: Iterable[ScreenSlot]) -> list[BindingType]:
    return [
        bind(
            f"screen.{slot.mode}",
            f"show_screen('{slot.mode}')",
            slot.title,
            keys=slot.keys,
            show=slot.mode == "help",
        )
        for slot in slots
        if slot.keys
    ]


class QGTMApp(App[None]):
    """Keyboard-driven terminal: reads snapshots from an EngineClient, sends it commands."""

    TITLE = "QGTM"
    CSS_PATH = TERMINAL_CSS
    COMMANDS = App.COMMANDS | {TerminalCommands, MnemonicCommands}
    SCREEN_SLOTS: ClassVar[tuple[ScreenSlot, ...]] = ALL_SLOTS
    MODES: ClassVar = {slot.mode: slot.screen for slot in ALL_SLOTS}
    BINDINGS: ClassVar[list[BindingType]] = [
        *_slot_bindings(ALL_SLOTS),
        bind("app.command_line", "command_line", "Cmd", key_display=":"),
        bind("app.pause", "toggle_pause", "Pause"),
        bind("app.faster", "faster", "Faster", key_display="+", show=False),
        bind("app.slower", "slower", "Slower", key_display="-", show=False),
        bind("app.step", "step", "Step"),
        bind("app.quit", "quit", "Quit"),
    ]

    def __init__(
        self,
        client: EngineClient,
        theme_name: str = DEFAULT_THEME,
        *,
        keymap: Mapping[str, str] | None = None,
        data_dir: Path | None = None,
        theme_file: Path | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.latest: EngineSnapshot | None = None
        """The newest snapshot read from the client; screens render it when shown."""
        self._client_running = False
        self._client_started = False
        self.start_error: Exception | None = None
        """Why the client could not start (the app then exits 1); None if it did."""
        self.exports_dir = (data_dir or default_data_dir()) / "exports"
        """Where table exports go (the data directory's exports/)."""
        self.theme_file = theme_file or theme_choice_file()
        symbols = list(load_universe().symbols)  # known before the client is started
        self.mnemonics: dict[str, Mnemonic] = mnemonic_table(
            ((s.mode, s.title, s.mnemonics) for s in ALL_SLOTS), symbols
        )
        self.security_symbol = "GLD" if "GLD" in symbols else (symbols[0] if symbols else "")
        """The symbol the Security page shows."""
        self.command_history: list[str] = []
        """Words entered on the command line, oldest first."""
        self._rendered_at = 0.0
        self.step_seen_at: float | None = None
        """time.monotonic() when a snapshot with a new session count was first read."""
        if theme_name not in THEMES:
            raise UnknownThemeError(
                f"no theme {theme_name!r} (available: {', '.join(sorted(THEMES))})"
            )
        for theme in THEMES.values():
            self.register_theme(theme)
        self.theme = saved_theme(self.theme_file, self.available_themes) or theme_name
        activate_palette(self.current_theme)
        self.set_keymap(check_keymap(keymap or {}, self.binding_ids()))

    async def on_mount(self) -> None:
        """Show the Monitor, then start the engine in a worker: the first frame paints
        while an in-process engine is still being built (its status reads "starting")."""
        await self.switch_mode("monitor")
        # after the first refresh: a build importing the engine's libraries in a thread
        # would otherwise share the interpreter (the GIL) with the first frame's layout
        self.call_after_refresh(self._start_client_worker)

    def _start_client_worker(self) -> None:
        self.run_worker(self._start_client(), name="engine-start", group="engine-start")

    async def _start_client(self) -> None:
        """Start (or attach to) the engine, then poll its snapshot REFRESH_HZ times a
        second. If it cannot start, the app exits 1 and keeps the error in
        `start_error` for the CLI to report (one line for an expected mistake)."""
        try:
            await self.client.start()
        except Exception as exc:  # not swallowed: the CLI re-raises it after the app
            self.start_error = exc
            self.exit(return_code=1)
            return
        self._client_running = self._client_started = True
        info = getattr(self.client, "info", None)
        if info is not None:  # attached to a daemon: say which (the banner keeps it short)
            self.notify(f"{attached_text(info)} on {info.data_dir}", title="attached", timeout=8)
        freeze_startup_heap()  # the engine is loaded: keep GC pauses off the key path
        self.poll_snapshot()
        self.set_interval(1 / REFRESH_HZ, self._poll_tick, name="poll-snapshot")

    def _engine_ready(self) -> bool:
        """Whether a control can act now; while the engine starts, say so instead."""
        if not self._client_started:
            self.notify("the engine is still starting", severity="warning", timeout=3)
        return self._client_started

    def _poll_tick(self) -> None:
        """The timer's poll: new sessions at most every STEP_RENDER_INTERVAL seconds."""
        previous = self.latest
        if (
            previous is not None
            and time.monotonic() - self._rendered_at < STEP_RENDER_INTERVAL
            and _controls_key(previous) == _controls_key(self.client.snapshot())
        ):
            return
        self.poll_snapshot()

    async def on_unmount(self) -> None:
        """Stop the engine however the app exits."""
        activate_palette(DEFAULT_THEME)
        await self._stop_client()

    async def _stop_client(self) -> None:
        if self._client_running:
            self._client_running = False
            await self.client.stop()

    def poll_snapshot(self) -> None:
        """Read the client's snapshot and push it to the active screen if it is news.

        News is a new engine step (`version`) or a change of replay state or kill
        tier, which commands can make between steps. New alerts also pop up as toasts.
        Before the client has started there is nothing to read.
        """
        if not self._client_started:
            return
        snapshot = self.client.snapshot()
        previous = self.latest
        if previous is not None and _same_state(previous, snapshot):
            return
        self.latest = snapshot
        self._rendered_at = time.monotonic()
        if previous is None or previous.sessions_done != snapshot.sessions_done:
            self.step_seen_at = time.monotonic()
        if previous is not None:
            for alert in _new_alerts(previous.alerts, snapshot.alerts):
                self.notify(alert, title="Alert", severity="warning", markup=False)
        try:
            screen = self.screen
        except ScreenStackError:  # a poll that lands while the app shuts down
            return
        if isinstance(screen, TerminalScreen):
            screen.show(snapshot)

    # Key bindings as data --------------------------------------------------------

    def binding_ids(self) -> set[str]:
        """Every binding id a keymap may remap."""
        return {binding_id for binding_id, *_ in self.binding_table()}

    def binding_table(self) -> list[tuple[str, str, str, str]]:
        """(id, keys, description, where) of every binding, user overrides applied."""
        sources: list[tuple[str, list[BindingType]]] = [
            ("anywhere", self.BINDINGS),
            ("tables", TablePanel.BINDINGS),
            ("command line", CommandLine.BINDINGS),
            ("confirm", ConfirmModal.BINDINGS),
            ("research", ResearchScreen.BINDINGS),
            ("risk", RiskScreen.BINDINGS),
            ("audit", AuditScreen.BINDINGS),
            ("data quality", DataScreen.BINDINGS),
            ("reconciliation", ReconScreen.BINDINGS),
            ("operator dialog", OperatorModal.BINDINGS),
            ("stored runs", RunPicker.BINDINGS),
        ]
        rows = []
        for where, bindings in sources:
            for binding in bindings:
                if isinstance(binding, Binding) and binding.id:  # bind(): every one has an id
                    keys = self._keymap.get(binding.id, binding.key)
                    rows.append((binding.id, keys, binding.description or binding.action, where))
        return rows

    # Actions: key bindings and palette commands both land here.

    async def action_show_screen(self, mode: str) -> None:
        """Switch to the screen registered under `mode`, showing the freshest snapshot."""
        await self.switch_mode(mode)
        self.poll_snapshot()

    def action_command_line(self) -> None:
        """Open the command line at the bottom of the screen."""
        self.push_screen(CommandLine(self.mnemonics, self.command_history), self._go_callback)

    async def _go_callback(self, target: Target | None) -> None:
        if target is not None:
            await self.go(target)

    async def go(self, target: Target) -> None:
        """Show where a mnemonic leads (the Security page of its symbol, or a screen)."""
        if target.symbol is not None:
            self.security_symbol = target.symbol
        await self.switch_mode(target.mode)
        self.poll_snapshot()
        if isinstance(self.screen, TerminalScreen) and self.latest is not None:
            self.screen.show(self.latest)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        """QGTM's colour variables for the current theme when it does not declare them
        (Textual's own themes, offered by its theme picker): no theme breaks the CSS."""
        return qgtm_variables(self.current_theme)

    def watch_theme(self, theme_name: str) -> None:
        """However the theme changes (our `theme:` entries or Textual's theme picker):
        Rich text takes its meaning colours, the choice is remembered, the screen redraws."""
        activate_palette(self.current_theme)
        if not self.is_running:  # the start-up theme: nothing new to remember
            return
        save_theme(self.theme_file, theme_name)
        if isinstance(self.screen, TerminalScreen):
            self.screen.restyle()

    def action_set_theme(self, theme_name: str) -> None:
        """Switch theme (remembered and redrawn by `watch_theme`), and say so."""
        self.theme = theme_name
        save_theme(self.theme_file, theme_name)
        self.notify(f"theme {theme_name} (saved to {self.theme_file})", title="Theme")

    async def action_flatten(self) -> None:
        """Ask the engine what a flatten would do, show exactly that, act only on yes."""
        if not self._engine_ready():
            return
        plan = await self.client.call("engine.flatten_preview")
        if plan.is_empty:
            self.notify("Nothing to flatten: no positions and no working orders", title="Flatten")
            return
        details = [f"CANCEL working order {order_id}" for order_id in plan.cancels]
        details += [
            f"{o.side} {o.quantity:,} {o.symbol} at the next open (last {o.reference_price:,.2f})"
            for o in plan.orders
        ]
        details.append("Orders are recorded and audited as 'operator'; they fill at the next open")
        details.append("Strategies may re-enter at the next decision unless paused or halted")

        async def decided(confirmed: bool | None) -> None:
            if not confirmed:
                self.notify("Flatten cancelled", title="Flatten")
                return
            try:
                done = await self.client.call("engine.flatten", expected=list(plan.order_ids))
            except RuntimeError as error:
                self.notify(str(error), title="Flatten refused", severity="error")
                return
            self.notify(
                f"Flatten sent: {len(done.orders)} closing orders, {len(done.cancels)} cancelled",
                title="Flatten",
            )
            self.poll_snapshot()

        title = f"Flatten all positions: {len(plan.orders)} closing orders"
        if plan.cancels:
            title += f", {len(plan.cancels)} working orders cancelled"
        self.push_screen(ConfirmModal(title, details, "Flatten"), decided)

    def action_toggle_pause(self) -> None:
        """Pause a running replay, resume a paused one."""
        if not self._engine_ready():
            return
        if self.client.snapshot().running:
            self.action_pause()
        else:
            self.action_resume()

    def action_pause(self) -> None:
        """Stop the replay clock after the current step."""
        if not self._engine_ready():
            return
        self.client.pause()
        self.poll_snapshot()

    def action_resume(self) -> None:
        """Restart the replay clock."""
        if not self._engine_ready():
            return
        self.client.resume()
        self.poll_snapshot()

    def action_faster(self) -> None:
        """Double the replay speed."""
        if not self._engine_ready():
            return
        self.client.faster()
        self.poll_snapshot()

    def action_slower(self) -> None:
        """Halve the replay speed."""
        if not self._engine_ready():
            return
        self.client.slower()
        self.poll_snapshot()

    async def action_step(self) -> None:
        """Run the next session now, paused or not."""
        if not self._engine_ready():
            return
        await self.client.advance(1)
        self.poll_snapshot()

    async def action_reconcile(self) -> None:
        """Run a broker-vs-book reconciliation now and show its counts."""
        if not self._engine_ready():
            return
        try:
            result = await self.client.call("recon.run")
        except Exception as exc:  # shown, never swallowed
            self.notify(f"reconciliation failed: {exc}", severity="error")
            return
        self.notify(
            f"reconciled: broker {result.broker} · book {result.local} · "
            f"discrepancies {result.discrepancies}"
        )
        self.poll_snapshot()

    async def action_quit(self) -> None:
        """Stop the engine, then exit."""
        await self._stop_client()
        self.exit()


def _new_alerts(before: tuple[str, ...], after: tuple[str, ...]) -> list[str]:
    """Alerts in `after` (newest first) that were not in `before`, oldest first."""
    seen = set(before)
    return [a for a in reversed(after) if a not in seen]


def _same_state(before: EngineSnapshot, after: EngineSnapshot) -> bool:
    return _state_key(before) == _state_key(after)


def _state_key(snapshot: EngineSnapshot) -> tuple[object, ...]:
    return snapshot.version, snapshot.running, snapshot.speed, snapshot.kill_tier


def _controls_key(snapshot: EngineSnapshot) -> tuple[object, ...]:
    return snapshot.running, snapshot.speed, snapshot.kill_tier, len(snapshot.alerts)
