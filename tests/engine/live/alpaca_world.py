"""A small Alpaca world for wall-clock tests: real alpaca-py clients against loopback fakes.

Daily bars of the whole universe (the demo generator's numbers, served in Alpaca's wire
format by tests/fakes/alpaca_data.py) up to Friday 2026-02-27; the test clock starts on
Monday 2026-03-02, whose bars the test releases after the close.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from qgtm.core.calendar import NEW_YORK
from qgtm.core.config import Config, EngineConfig, LearnConfig, LiveConfig
from qgtm.core.enums import Source
from qgtm.core.universe import load_universe
from qgtm.engine.data.demo import generate_demo_market

FIRST = date(2025, 1, 2)
LAST_STORED = date(2026, 2, 27)  # Friday
MONDAY = date(2026, 3, 2)
TUESDAY = date(2026, 3, 3)
CASH = Decimal("1000000")


def ny(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A New York wall-clock time."""
    return datetime.combine(day, time(hour, minute, second), tzinfo=NEW_YORK)


@lru_cache(maxsize=1)
def _bars_by_day() -> dict[date, dict[str, dict]]:
    market = generate_demo_market(load_universe(), FIRST, MONDAY, seed=5)
    out: dict[date, dict[str, dict]] = {}
    for row in market.bars.iter_rows(named=True):
        day = row["date"]
        stamp = datetime.combine(day, time(0), tzinfo=NEW_YORK).astimezone(UTC)
        out.setdefault(day, {})[row["symbol"]] = {
            "t": stamp.isoformat().replace("+00:00", "Z"),
            "o": row["open"],
            "h": row["high"],
            "l": row["low"],
            "c": row["close"],
            "v": int(row["volume"]),
            "n": 1000,
            "vw": row["close"],
        }
    return out


def bars_until(last: date) -> dict[str, list[dict]]:
    """Alpaca-format bars per symbol, every session up to `last`."""
    out: dict[str, list[dict]] = {}
    for day, row in sorted(_bars_by_day().items()):
        if day <= last:
            for symbol, bar in row.items():
                out.setdefault(symbol, []).append(bar)
    return out


def release(served: dict[str, list[dict]], day: date) -> None:
    """Append `day`'s bars to what the data fake serves (the day's close is in)."""
    for symbol, bar in _bars_by_day()[day].items():
        served[symbol].append(bar)


def close_of(day: date, symbol: str) -> float:
    """The close the fake will publish for `symbol` on `day`."""
    return float(_bars_by_day()[day][symbol]["c"])


def alpaca_config(url: str, stream_url: str) -> Config:
    """source=alpaca, mode=paper, the broker at the fake; learning off to stay fast."""
    base = Config()
    return replace(
        base,
        source=Source.ALPACA,
        engine=EngineConfig(speed=0.0),
        execution=replace(
            base.execution, broker="alpaca", alpaca_url=url, alpaca_stream_url=stream_url
        ),
        live=LiveConfig(
            recon_interval_s=1800,
            watchdog=False,
            heartbeat_interval_s=0.05,
            task_backoff_s=0.01,
        ),
        learn=LearnConfig(enabled=False),
    )


def state_rows(data_dir: Path, sql: str) -> list[tuple]:
    """Rows of state.sqlite, read on a fresh connection."""
    import sqlite3

    conn = sqlite3.connect(data_dir / "state.sqlite")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()
