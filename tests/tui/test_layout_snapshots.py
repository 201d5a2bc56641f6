"""Screenshot regressions of the main screens (update with --snapshot-update).

Fixed seed (tests/tui/conftest.py SHORT_DEMO), engine paused, ten sessions advanced;
each screen at 80x24 (SSH on a small terminal) and 200x60 (a large screen).
"""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from qgtm.tui.app import QGTMApp
from qgtm.tui.widgets.equity_chart import EquityChart
from tests.tui.conftest import RecordingClient, make_engine

SIZES = [(80, 24), (200, 60)]
SCREEN_KEYS = {
    "monitor": [],
    "portfolio": ["9"],
    "signals": ["0"],
    "security": ["colon", "G", "L", "D", "enter"],
}


def _after_ten_sessions(keys: list[str]):
    async def run_before(pilot: Pilot) -> None:
        app = pilot.app
        assert isinstance(app, QGTMApp)
        await app.client.advance(10)
        app.poll_snapshot()
        await pilot.pause()
        # The Monitor reloads signals at most once a second and redraws the equity chart
        # at most every CHART_INTERVAL; ten sessions run well inside that, so the tenth
        # session's signals and curve are deferred. Wait for both: the picture then shows
        # them whatever the machine's speed (it used to depend on whether the intervals
        # had passed by the screenshot, and failed on a loaded machine).
        for _ in range(120):
            charts = app.screen.query(EquityChart)
            deferred = getattr(app.screen, "_signals_timer_set", False) or any(
                chart.redraw_pending for chart in charts
            )
            if not deferred:
                break
            await pilot.pause(0.05)
        await app.workers.wait_for_complete()
        if keys:
            await pilot.press(*keys)
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", sorted(SCREEN_KEYS))
def test_main_screen_layout(snap_compare, tmp_path, screen: str, size: tuple[int, int]) -> None:
    app = QGTMApp(
        RecordingClient(make_engine(tmp_path, running=False)), theme_file=tmp_path / "theme"
    )
    assert snap_compare(
        app, terminal_size=size, run_before=_after_ten_sessions(SCREEN_KEYS[screen])
    )


def test_orders_layout(snap_compare, tmp_path) -> None:
    app = QGTMApp(
        RecordingClient(make_engine(tmp_path, running=False)), theme_file=tmp_path / "theme"
    )
    assert snap_compare(app, terminal_size=(120, 30), run_before=_after_ten_sessions(["2"]))
