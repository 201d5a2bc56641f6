"""Child process for the kill test: one engine session against the fake Alpaca server.

Usage: python alpaca_engine_child.py DATA_DIR REST_URL STREAM_URL
"""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

from qgtm.core.config import Config, DemoConfig, EngineConfig
from qgtm.engine.live.engine import TradingEngine


def main() -> None:
    data_dir, url, stream_url = sys.argv[1:4]
    config = replace(
        Config(),
        demo=DemoConfig(seed=11, start=date(2008, 1, 2), end=date(2010, 6, 30)),
        engine=EngineConfig(speed=0.0),
    )
    config = replace(
        config,
        execution=replace(
            config.execution, broker="alpaca", alpaca_url=url, alpaca_stream_url=stream_url
        ),
    )
    engine = TradingEngine(config, Path(data_dir))
    print("ready", flush=True)
    engine.step()  # commits the session, then sends the orders (and hangs on the first)
    print("stepped", flush=True)


if __name__ == "__main__":
    main()
