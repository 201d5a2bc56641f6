"""Driving every screen of the terminal from the keyboard alone (Pilot, real engine)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import time
from pathlib import Path

import polars as pl
import pytest
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import Input, Label, Static

from qgtm.tui.app import QGTMApp
from qgtm.tui.screens.help import HelpScreen
from qgtm.tui.screens.portfolio import PortfolioScreen
from qgtm.tui.screens.regime import RegimeScreen
from qgtm.tui.screens.security import SecurityScreen
from qgtm.tui.screens.signals import SignalsScreen
from qgtm.tui.widgets.command_line import CommandLine
from qgtm.tui.widgets.confirm import ConfirmModal
from qgtm.tui.widgets.live_table import LiveTable
from qgtm.tui.widgets.table_panel import TablePanel
from tests.tui.conftest import RecordingClient, make_engine
from tests.tui.test_app import run_palette_command

SIZE = (120, 40)


@pytest.fixture
def paused_client(tmp_path: Path):
    engine = make_engine(tmp_path / "book", running=False)
    yield RecordingClient(engine)
    engine.close()


@pytest.fixture
def app(paused_client: RecordingClient, tmp_path: Path) -> QGTMApp:
    return QGTMApp(paused_client, data_dir=tmp_path / "book", theme_file=tmp_path / "theme")


async def settle(pilot: Pilot, until, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        if until():
            return
    raise AssertionError("the terminal did not get there in time")


async def command(pilot: Pilot, word: str) -> None:
    await pilot.press("colon")
    await pilot.press(*word)
    await pilot.press("enter")
    await pilot.pause()


def table_keys(app: QGTMApp, panel_id: str) -> list[str]:
    return app.screen.query_one(f"#{panel_id} LiveTable", LiveTable).row_keys


async def test_typing_a_symbol_opens_its_security_page_with_bars_and_signals(
    app: QGTMApp, paused_client: RecordingClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await paused_client.advance(3)
        await command(pilot, "uso")
        assert isinstance(app.screen, SecurityScreen)
        assert app.security_symbol == "USO"
        await settle(pilot, lambda: table_keys(app, "security-signals"))
        keys = table_keys(app, "security-signals")
        assert all(k.split("|")[2] == "USO" for k in keys)
        assert "retdaily" not in table_keys(app, "security-stats")
        assert table_keys(app, "security-stats")[:2] == ["ret1D", "ret1W"]


async def test_screen_mnemonics_open_their_screens(app: QGTMApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        for word, screen in [
            ("PORT", PortfolioScreen),
            ("SIG", SignalsScreen),
            ("REGIME", RegimeScreen),
            ("HELP", HelpScreen),
        ]:
            await command(pilot, word)
            assert isinstance(app.screen, screen), word


async def test_an_unknown_mnemonic_says_so_and_keeps_the_line_open(app: QGTMApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "ZZZ")
        assert isinstance(app.screen, CommandLine)
        error = str(app.screen.query_one("#command-error", Static).content)
        assert "unknown mnemonic 'ZZZ'" in error
        await pilot.press("escape")
        assert not isinstance(app.screen, CommandLine)


async def test_up_recalls_the_previous_command(app: QGTMApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "port")
        await command(pilot, "sig")
        await pilot.press("colon", "up", "up", "enter")
        await pilot.pause()
        assert isinstance(app.screen, PortfolioScreen)
        assert app.command_history == ["PORT", "SIG", "PORT"]


async def test_tab_completes_a_typed_prefix_so_enter_opens_its_screen(app: QGTMApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon", "s", "l", "tab")
        assert app.screen.query_one("#command-input", Input).value == "SLV"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SecurityScreen)
        assert app.security_symbol == "SLV"


async def test_tab_again_cycles_through_the_matches_and_shift_tab_goes_back(
    app: QGTMApp,
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon", "r")
        line = app.screen.query_one("#command-input", Input)
        seen = []
        for _ in range(3):
            await pilot.press("tab")
            seen.append(line.value)
        assert seen[:2] == ["RECON", "REGIME"]  # the words starting with R, alphabetically
        assert len(set(seen)) == 3 and all(word in app.mnemonics for word in seen)
        await pilot.press("shift+tab")
        assert line.value == "REGIME"
        listed = str(app.screen.query_one("#command-matches", Static).content)
        assert "RECON" in listed and "REGIME" in listed
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, RegimeScreen)


async def test_tab_with_no_match_leaves_the_text_and_says_so(app: QGTMApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon", "z", "q", "tab")
        assert isinstance(app.screen, CommandLine)
        assert app.screen.query_one("#command-input", Input).value == "zq"
        error = str(app.screen.query_one("#command-error", Static).content)
        assert "no mnemonic or symbol matches 'ZQ'" in error


async def test_the_palette_completes_mnemonics(app: QGTMApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await run_palette_command(pilot, "SLV  Security")
        assert isinstance(app.screen, SecurityScreen)
        assert app.security_symbol == "SLV"


async def test_number_and_function_keys_reach_my_screens(app: QGTMApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("9")
        assert isinstance(app.screen, PortfolioScreen)
        await pilot.press("f10")
        assert isinstance(app.screen, SignalsScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)


async def test_help_lists_every_mnemonic_and_every_binding(app: QGTMApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert set(table_keys(app, "help-mnemonics")) == set(app.mnemonics)
        binding_ids = {key.split("|")[1] for key in table_keys(app, "help-keys")}
        assert binding_ids == app.binding_ids()
        assert {"app.command_line", "table.sort", "screen.portfolio"} <= binding_ids


async def test_portfolio_shows_positions_and_sector_weights(
    app: QGTMApp, paused_client: RecordingClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await paused_client.advance(3)
        await pilot.press("9")
        await settle(pilot, lambda: table_keys(app, "portfolio-positions"))
        snapshot = paused_client.snapshot()
        assert table_keys(app, "portfolio-positions") == [p.symbol for p in snapshot.positions]
        held = {p.symbol for p in snapshot.positions}
        sectors = {q.sector for q in snapshot.watchlist if q.symbol in held}
        assert set(table_keys(app, "sectors")) == sectors


async def test_signals_screen_lists_the_stored_signals(
    app: QGTMApp, paused_client: RecordingClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await paused_client.advance(2)
        await pilot.press("0")
        await settle(pilot, lambda: table_keys(app, "signals"))
        stored = paused_client.engine.state.conn.execute("SELECT count(*) FROM signals").fetchone()
        assert len(table_keys(app, "signals")) == stored[0]


async def test_sort_filter_and_export_from_the_keyboard(
    app: QGTMApp, paused_client: RecordingClient, tmp_path: Path
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await paused_client.advance(1)
        await settle(pilot, lambda: table_keys(app, "watchlist"))
        app.screen.query_one("#watchlist LiveTable").focus()
        await pilot.press("s")  # by symbol, ascending
        keys = table_keys(app, "watchlist")
        assert keys == sorted(keys)
        await pilot.press("S")  # descending
        assert table_keys(app, "watchlist") == sorted(keys, reverse=True)
        await pilot.press("slash", *"energy", "enter")
        energy = {q.symbol for q in paused_client.snapshot().watchlist if q.sector == "energy"}
        assert set(table_keys(app, "watchlist")) == energy
        await pilot.press("x")
        await pilot.pause()
        exported = list((tmp_path / "book" / "exports").glob("watchlist-*.csv"))
        assert len(exported) == 1
        frame = pl.read_csv(exported[0])
        assert set(frame["symbol"]) == energy
        await pilot.press("X")
        await pilot.pause()
        assert list((tmp_path / "book" / "exports").glob("watchlist-*.parquet"))


async def test_exports_write_typed_values_named_by_their_unit(
    app: QGTMApp, paused_client: RecordingClient, tmp_path: Path
) -> None:
    """Watchlist and blotter exports, read back from CSV and Parquet: prices and
    fractions are floats (the fraction, not the percent text), counts are integers,
    dates are dates, and a fraction's column name says so."""
    async with app.run_test(size=SIZE) as pilot:
        await paused_client.advance(3)
        app.poll_snapshot()  # the tables show the third session, not one polled mid-way
        await settle(pilot, lambda: table_keys(app, "watchlist"))
        app.screen.query_one("#watchlist LiveTable").focus()
        await pilot.press("x", "X")
        await pilot.press("2")
        await settle(pilot, lambda: table_keys(app, "blotter"))
        app.screen.query_one("#blotter LiveTable").focus()
        await pilot.press("x", "X")
        await pilot.pause()
    exports = tmp_path / "book" / "exports"
    snapshot = paused_client.snapshot()
    quotes = {q.symbol: q for q in snapshot.watchlist}
    orders = {o.client_order_id: o for o in snapshot.recent_orders}
    for fmt in ("csv", "parquet"):
        [watch_file] = exports.glob(f"watchlist-*.{fmt}")
        [blotter_file] = exports.glob(f"blotter-*.{fmt}")
        if fmt == "csv":
            watch = pl.read_csv(watch_file, try_parse_dates=True)
            blotter = pl.read_csv(blotter_file, try_parse_dates=True)
        else:
            watch, blotter = pl.read_parquet(watch_file), pl.read_parquet(blotter_file)
        assert watch.schema == pl.Schema(
            {
                "symbol": pl.String,
                "sector": pl.String,
                "last_price": pl.Float64,
                "change_frac": pl.Float64,
                "volume": pl.Int64,
            }
        ), fmt
        for row in watch.iter_rows(named=True):
            quote = quotes[row["symbol"]]
            assert row["change_frac"] == pytest.approx(quote.change_pct, abs=1e-12)
            assert abs(row["change_frac"]) < 0.5  # a fraction, never the percent's digits
            assert row["last_price"] == pytest.approx(quote.last)
            assert row["volume"] == quote.volume
        assert blotter["decision_date"].dtype == pl.Date, fmt
        assert blotter["quantity"].dtype == pl.Int64, fmt
        assert blotter.height == len(orders) > 0
        for row in blotter.iter_rows(named=True):
            order = orders[row["client_order_id"]]
            assert row["decision_date"] == order.decision_date
            assert row["quantity"] == order.quantity


async def test_escape_clears_the_filter(app: QGTMApp, paused_client: RecordingClient) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await paused_client.advance(1)
        await settle(pilot, lambda: table_keys(app, "watchlist"))
        app.screen.query_one("#watchlist LiveTable").focus()
        await pilot.press("slash", *"GLD")
        assert table_keys(app, "watchlist") == ["GLD"]
        await pilot.press("escape")
        assert len(table_keys(app, "watchlist")) == len(paused_client.snapshot().watchlist)
        assert not app.screen.query_one("#watchlist", TablePanel).has_class("-filtering")


async def test_flatten_asks_first_listing_exactly_the_closing_orders(
    app: QGTMApp, paused_client: RecordingClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await paused_client.advance(3)
        holdings = paused_client.engine.book.quantities()
        assert holdings
        await run_palette_command(pilot, "flatten all")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))
        details = [str(w.content) for w in app.screen.query(".confirm-detail")]
        title = str(app.screen.query_one("#confirm-title", Label).content)
        assert title.startswith(f"Flatten all positions: {len(holdings)} closing orders")
        cancels = sum(d.startswith("• CANCEL working order") for d in details)
        assert (f", {cancels} working orders cancelled" in title) == (cancels > 0)
        for symbol, qty in holdings.items():
            side = "SELL" if qty > 0 else "BUY"
            assert any(
                d.startswith(f"• {side} {abs(qty):,} {symbol} at the next open") for d in details
            )
        await pilot.press("y")
        await settle(
            pilot,
            lambda: paused_client.snapshot().recent_orders[0].client_order_id.startswith("OPFLAT"),
        )
        flatten_orders = [
            o
            for o in paused_client.snapshot().recent_orders
            if o.client_order_id.startswith("OPFLAT")
        ]
        assert {o.symbol for o in flatten_orders} == set(holdings)


async def test_declining_the_flatten_sends_nothing(
    app: QGTMApp, paused_client: RecordingClient
) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await paused_client.advance(3)
        await run_palette_command(pilot, "flatten all")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("n")
        await pilot.pause()
        count = paused_client.engine.state.conn.execute(
            "SELECT count(*) FROM orders WHERE client_order_id LIKE 'OPFLAT%'"
        ).fetchone()[0]
        assert count == 0


async def test_theme_switch_from_the_palette_persists(
    paused_client: RecordingClient, tmp_path: Path
) -> None:
    theme_file = tmp_path / "theme"
    app = QGTMApp(paused_client, theme_file=theme_file)
    async with app.run_test(size=SIZE) as pilot:
        await run_palette_command(pilot, "theme: qgtm-light")
        assert app.theme == "qgtm-light"
    assert theme_file.read_text().strip() == "qgtm-light"
    again = QGTMApp(paused_client, theme_file=theme_file)
    assert again.theme == "qgtm-light"


async def test_a_keymap_override_from_config_rebinds_the_key(
    paused_client: RecordingClient, tmp_path: Path
) -> None:
    app = QGTMApp(paused_client, keymap={"app.pause": "ctrl+t"}, theme_file=tmp_path / "t")
    async with app.run_test(size=SIZE) as pilot:
        paused_client.resume()
        await pilot.press("p")
        assert paused_client.snapshot().running
        await pilot.press("ctrl+t")
        assert not paused_client.snapshot().running


def test_every_binding_of_the_terminal_has_an_id_the_keymap_knows(
    paused_client: RecordingClient, tmp_path: Path
) -> None:
    """Every Binding a class of qgtm.tui declares can be remapped: it has an id and the
    app's keymap check knows it (an id-less binding would accept an override silently
    and ignore it)."""
    known = QGTMApp(paused_client, theme_file=tmp_path / "t").binding_ids()
    declared = []
    package = importlib.import_module("qgtm.tui")
    for module_info in pkgutil.walk_packages(package.__path__, "qgtm.tui."):
        module = importlib.import_module(module_info.name)
        for cls in vars(module).values():
            if inspect.isclass(cls) and cls.__module__ == module.__name__:
                bindings = cls.__dict__.get("BINDINGS", [])
                declared += [(cls.__name__, b) for b in bindings if isinstance(b, Binding)]
    assert len(declared) > 30
    assert [(name, b.key) for name, b in declared if b.id not in known] == []


def test_a_keymap_override_with_an_unknown_id_is_refused(
    paused_client: RecordingClient, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"unknown key binding id.*app.nope"):
        QGTMApp(paused_client, keymap={"app.nope": "x"}, theme_file=tmp_path / "t")


async def test_new_alerts_pop_up_as_toasts(app: QGTMApp, paused_client: RecordingClient) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        paused_client.engine.alerts.appendleft("kill tier NORMAL -> WARN: test")
        paused_client.engine.refresh_snapshot()
        app.poll_snapshot()
        await pilot.pause()
        assert [n.message for n in app._notifications] == ["kill tier NORMAL -> WARN: test"]


async def test_regime_screen_shows_the_detected_regime(app: QGTMApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await command(pilot, "REGIME")
        assert isinstance(app.screen, RegimeScreen)
        engine_regime = app.client.snapshot().regime
        text = str(app.screen.query_one("#regime-line", Static).content)
        if engine_regime:
            assert f"Current regime: {engine_regime}" in text
        else:
            assert text.startswith("Regime: —")
