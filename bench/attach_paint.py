"""Time for a terminal to attach to a running daemon: imports, then the first frame that
shows a daemon snapshot (Textual headless, 120x40).

Usage: start a daemon (`qgtm --data-dir DIR --daemon`), then
`python bench/attach_paint.py DIR`. Prints seconds since this script's first line.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import asyncio  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from qgtm.engine.live.attach import SocketClient  # noqa: E402
from qgtm.engine.live.control import socket_path  # noqa: E402
from qgtm.tui.app import QGTMApp  # noqa: E402

T1 = time.perf_counter()


async def main(data_dir: Path) -> None:
    """Attach, wait for the first rendered snapshot, report, quit."""
    app = QGTMApp(SocketClient(socket_path(data_dir)))
    async with app.run_test(size=(120, 40)) as pilot:
        while app.latest is None or app.screen.shown_snapshot is None:
            await asyncio.sleep(0.005)
        await pilot.pause()
        print(f"imports {T1 - T0:.2f}s first_frame_with_snapshot {time.perf_counter() - T0:.2f}s")
        await pilot.press("q")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
