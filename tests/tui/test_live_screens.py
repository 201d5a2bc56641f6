"""Pilot tests of the Recon and Audit screens against the real engine."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input, Static

from qgtm.core.config import LiveConfig
from qgtm.engine.live.daemon import install_live_commands
from qgtm.engine.live.recon import ReconciliationEngine
from qgtm.tui.app import QGTMApp
from qgtm.tui.screens.audit import AuditScreen
from qgtm.tui.screens.recon import NO_DISCREPANCIES, NO_RUN_TABLE, NOT_RUN, ReconScreen
from qgtm.tui.widgets.table_panel import TablePanel
from tests.tui.conftest import RecordingClient, make_engine


def _client(tmp_path: Path) -> RecordingClient:
    engine = make_engine(tmp_path, running=False)
    for _ in range(6):
        engine.step()
    install_live_commands(engine, ReconciliationEngine(LiveConfig()))
    return RecordingClient(engine)


def _static(app: QGTMApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).content)


async def test_recon_screen_runs_a_reconciliation_and_shows_discrepancies(tmp_path: Path):
    client = _client(tmp_path)
    client.engine.broker._positions["ZZZ"] = 10  # a position the book does not know
    app = QGTMApp(client)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("7")
        await pilot.pause()
        assert isinstance(app.screen, ReconScreen)
        assert _static(app, "#recon-summary") == NOT_RUN
        empty = app.screen.query_one("#recon", TablePanel).query_one(".empty-state", Static)
        assert str(empty.content) == NO_RUN_TABLE  # never "agree" before any comparison
        await pilot.press("r")
        await pilot.pause(0.3)
        assert "discrepancies 1" in _static(app, "#recon-summary")
        table = app.screen.query_one("#recon", TablePanel).table
        assert table.row_count == 1
        assert "MISSING_LOCALLY" in str(table.get_row_at(0)[0])
        assert any("ZZZ" in a for a in client.snapshot().alerts)
        del client.engine.broker._positions["ZZZ"]
        await pilot.press("f7", "r")
        await pilot.pause(0.3)
        assert table.row_count == 0
        panel = app.screen.query_one("#recon", TablePanel)
        assert panel.has_class("-empty")  # the "broker and book agree" line shows
        assert str(panel.query_one(".empty-state", Static).content) == NO_DISCREPANCIES
    client.engine.close()


async def test_audit_screen_filters_by_event_actor_and_text_from_the_keyboard(tmp_path: Path):
    client = _client(tmp_path)
    app = QGTMApp(client)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        table = screen.query_one("#audit", TablePanel).table
        unfiltered = table.row_count
        assert unfiltered > 0
        await pilot.press("e", "e")  # all -> ORDER_SUBMITTED -> ORDER_FILLED
        await pilot.pause(0.3)
        assert screen.event == "ORDER_FILLED"
        assert screen.matches and {r.event for r in screen.matches} == {"ORDER_FILLED"}
        assert "event: ORDER_FILLED" in _static(app, "#audit-filters")
        symbol = screen.matches[0].detail.split("symbol=")[1].split()[0]
        await pilot.press("slash", *symbol, "enter")
        await pilot.pause(0.3)
        assert screen.text == symbol
        assert screen.matches and all(symbol in r.detail for r in screen.matches)
        assert table.row_count == len(screen.matches)
        assert app.focused is not screen.query_one("#audit-text", Input)
        await pilot.press("a", "a")  # actor: engine -> risk (fills are the engine's)
        await pilot.pause(0.3)
        assert screen.actor == "risk" and screen.matches == ()
        assert table.row_count == 0
        await pilot.press("c")
        await pilot.pause(0.3)
        assert not screen.filtering and table.row_count == unfiltered
    client.engine.close()


async def test_a_screens_own_key_is_remapped_by_its_id(tmp_path: Path):
    """[tui.keymap] "audit.event" = "ctrl+e": on the Audit screen `e` no longer cycles the
    event filter and ctrl+e does; the Help screen's table shows the new key."""
    client = _client(tmp_path)
    app = QGTMApp(client, keymap={"audit.event": "ctrl+e"})
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        await pilot.press("e")
        await pilot.pause(0.2)
        assert screen.event is None
        await pilot.press("ctrl+e")
        await pilot.pause(0.2)
        assert screen.event == "ORDER_SUBMITTED"
        rows = {row[0]: row[1] for row in app.binding_table()}
        assert rows["audit.event"] == "ctrl+e" and rows["audit.actor"] == "a"
    client.engine.close()
