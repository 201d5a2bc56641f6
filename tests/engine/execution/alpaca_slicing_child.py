"""Child process for the sliced kill test: works one VWAP parent against the fake Alpaca.

Usage: python alpaca_slicing_child.py DATA_DIR REST_URL STREAM_URL
"""

from __future__ import annotations

import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from qgtm.core.enums import Side
from qgtm.core.types import Order
from qgtm.engine.audit import AuditLog
from qgtm.engine.execution.algos import Algo
from qgtm.engine.execution.brokers.alpaca import AlpacaBroker
from qgtm.engine.execution.manager import OrderManager
from qgtm.engine.execution.slicer import AlgoClock
from qgtm.engine.state import StateStore
from tests.engine.execution.alpaca_desk import FakeClock
from tests.engine.execution.test_alpaca_slicing import CLOSE, DECIDED, PARENT
from tests.fakes.alpaca import KEY_ID, SECRET


def main() -> None:
    data_dir, url, stream_url = sys.argv[1:4]
    broker = AlpacaBroker(KEY_ID, SECRET, url=url, stream_url=stream_url, backoff_seconds=0.01)
    state = StateStore(Path(data_dir))
    oms = OrderManager(state, AuditLog(state.conn), broker, lambda fill: None)
    order = Order(PARENT, "GLD", Side.BUY, 1300, DECIDED, date(2024, 3, 5))
    with state.transaction():
        oms.place(order, strategy="tsmom", algo=Algo.VWAP, decision_price=Decimal(99), at=DECIDED)
    oms.dispatch(DECIDED)
    print("ready", flush=True)
    clock = FakeClock(DECIDED)
    AlgoClock(oms, clock, clock.sleep, idle=3600).run_until(CLOSE + timedelta(minutes=1))
    print("worked", flush=True)


if __name__ == "__main__":
    main()
