"""Screenshot regressions of the terminal's layout (update with --snapshot-update)."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot

from qgtm.tui.app import QGTMApp
from tests.tui.conftest import RecordingClient, make_engine


async def _after_ten_sessions(pilot: Pilot) -> None:
    app = pilot.app
    assert isinstance(app, QGTMApp)
    await app.client.advance(10)
    app.poll_snapshot()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_monitor_layout(snap_compare, tmp_path, size: tuple[int, int]) -> None:
    app = QGTMApp(RecordingClient(make_engine(tmp_path, running=False)))
    assert snap_compare(app, terminal_size=size, run_before=_after_ten_sessions)


def test_orders_layout(snap_compare, tmp_path) -> None:
    app = QGTMApp(RecordingClient(make_engine(tmp_path, running=False)))
    assert snap_compare(app, press=["2"], terminal_size=(120, 30), run_before=_after_ten_sessions)
