"""Loopback fake of Alpaca Market Data API v2, in the wire format alpaca-py reads.

  GET /v2/stocks/bars            ?symbols=&timeframe=&start=&end=&page_token=  (paginated)
      {"bars": {"GLD": [{"t", "o", "h", "l", "c", "v", "n", "vw"}, ...]},
       "next_page_token": ...}
      Daily bars (any timeframe but minutes) filter by day; with `minute_bars` given, a
      "1Min" request filters exactly by bar start time in [start, end).
  GET /v2/stocks/quotes/latest   ?symbols=   {"quotes": {"GLD": {"t", "ax", "ap", "as",
                                              "bx", "bp", "bs", "c", "z"}}}
  GET /v2/stocks/trades/latest   ?symbols=   {"trades": {"GLD": {"t", "x", "p", "s", "c",
                                              "i", "z"}}}
  GET /v2/stocks/bars/latest     ?symbols=   {"bars": {"GLD": {...one bar...}}}
A symbol without data is left out of the map, as Alpaca does.
"""

from __future__ import annotations

import json
from datetime import datetime

from tests.fakes.loopback import LoopbackServer


def bar(t: str, close: float, volume: int = 1_000_000) -> dict:
    """One bar in Alpaca's wire format."""
    return {
        "t": t,
        "o": close,
        "h": close * 1.01,
        "l": close * 0.99,
        "c": close,
        "v": volume,
        "n": 1000,
        "vw": close,
    }


BARS = {
    "GLD": [
        bar("2024-01-02T05:00:00Z", 190.1),
        bar("2024-01-03T05:00:00Z", 188.9),
        bar("2024-01-04T05:00:00Z", 189.5),
    ],
    "USO": [
        bar("2024-01-02T05:00:00Z", 65.2),
        bar("2024-01-03T05:00:00Z", 67.4),
        bar("2024-01-04T05:00:00Z", 66.9),
    ],
}


def minute_bar(t: str, price: float, volume: int, vwap: float | None = None) -> dict:
    """One intraday bar in Alpaca's wire format (flat OHLC at `price`, `vw` = vwap)."""
    return {
        "t": t,
        "o": price,
        "h": price,
        "l": price,
        "c": price,
        "v": volume,
        "n": 10,
        "vw": price if vwap is None else vwap,
    }


def quote(t: str, bid: float, ask: float) -> dict:
    """A latest-quote record in Alpaca's wire format."""
    return {
        "t": t,
        "ax": "V",
        "ap": ask,
        "as": 3,
        "bx": "V",
        "bp": bid,
        "bs": 2,
        "c": ["R"],
        "z": "B",
    }


def trade(t: str, price: float, size: int = 100) -> dict:
    """A latest-trade record in Alpaca's wire format."""
    return {"t": t, "x": "V", "p": price, "s": size, "c": ["@"], "i": 52983525029461, "z": "B"}


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def alpaca_data_fake(
    bars: dict | None = None,
    page_size: int = 2,
    *,
    minute_bars: dict | None = None,
    quotes: dict | None = None,
    trades: dict | None = None,
) -> LoopbackServer:
    """Serves `bars` in pages of `page_size` with next_page_token; checks key headers.

    `minute_bars`, `quotes` and `trades` (symbol -> bars / latest record) add the
    intraday endpoints the OMS uses for TCA. Everything is read on every request, so a
    test can append a new day's bars after starting the server.
    """
    data = bars or BARS

    def stock_bars(query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        flat = [(s, b) for s in sorted(data) for b in data[s]]
        symbols = query["symbols"][0].split(",")
        start, end = query.get("start", [""])[0], query.get("end", ["~"])[0]
        if query.get("timeframe", [""])[0] == "1Min" and minute_bars is not None:
            # Read at request time, so a test may add bars after starting the server.
            minutes = [(s, b) for s in sorted(minute_bars) for b in minute_bars[s]]
            lo = _when(start) if start else None
            hi = _when(end) if end != "~" else None
            rows = [
                (s, b)
                for s, b in minutes
                if s in symbols
                and (lo is None or _when(b["t"]) >= lo)
                and (hi is None or _when(b["t"]) < hi)
            ]
        else:
            rows = [
                (s, b) for s, b in flat if s in symbols and start[:10] <= b["t"][:10] < end[:10]
            ]
        offset = int(query.get("page_token", ["0"])[0] or 0)
        page = rows[offset : offset + page_size]
        out: dict[str, list] = {}
        for s, b in page:
            out.setdefault(s, []).append(b)
        token = str(offset + page_size) if offset + page_size < len(rows) else None
        body = {"bars": out, "next_page_token": token}
        return 200, "application/json", json.dumps(body).encode()

    def latest(key: str, table: dict | None):
        def handler(query: dict[str, list[str]]) -> tuple[int, str, bytes]:
            symbols = query["symbols"][0].split(",")
            source = {} if table is None else table
            found = {s: source[s] for s in symbols if s in source}
            return 200, "application/json", json.dumps({key: found}).encode()

        return handler

    class _LastBars(dict):
        def __getitem__(self, symbol: str) -> dict:
            return (minute_bars or {})[symbol][-1]

        def __contains__(self, symbol: object) -> bool:
            return bool((minute_bars or {}).get(symbol))  # type: ignore[call-overload]

    last_bars = _LastBars()
    return LoopbackServer(
        routes={
            "/v2/stocks/bars": stock_bars,
            "/v2/stocks/quotes/latest": latest("quotes", quotes),
            "/v2/stocks/trades/latest": latest("trades", trades),
            "/v2/stocks/bars/latest": latest("bars", last_bars),
        }
    )
