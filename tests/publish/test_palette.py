"""The terminal shows the engine's outbox through the palette ("publish: Outbox status")."""

from __future__ import annotations

import time
from pathlib import Path

from qgtm.tui.app import QGTMApp
from tests.tui.conftest import RecordingClient, make_engine
from tests.tui.test_app import run_palette_command


async def test_palette_outbox_status_notifies_pending_count(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, running=False)
    for _ in range(2):
        engine.step()
    pending = engine.call("publish.status").pending
    assert pending > 0  # two rebalances from flat produce target changes
    app = QGTMApp(RecordingClient(engine))
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await run_palette_command(pilot, "outbox status")
            deadline = time.monotonic() + 2
            while not app._notifications and time.monotonic() < deadline:
                await pilot.pause(0.05)
            texts = [n.message for n in app._notifications]
            assert any(f"outbox: {pending} pending, 0 sent" in t for t in texts), texts
    finally:
        engine.close()
