"""Child process for the wall-clock kill test: the daemon with source=alpaca on a fake
clock that starts a second before Monday's decision time and runs freely.

argv: data_dir broker_url stream_url (keys and the data fake's url come from the env).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from qgtm.engine.live.clock import FakeClock
from qgtm.engine.live.daemon import TradingDaemon
from qgtm.engine.live.engine import TradingEngine
from tests.engine.live.alpaca_world import MONDAY, alpaca_config, ny


async def main(data_dir: Path, url: str, stream_url: str) -> None:
    config = alpaca_config(url, stream_url)
    clock = FakeClock(ny(MONDAY, 15, 29, 59))
    engine = TradingEngine(config, data_dir, clock=clock)
    daemon = TradingDaemon(config, data_dir, engine, control_socket=False, max_sessions=1)
    await daemon.run()
    print("decided", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3]))
