"""Loopback fake of Alpaca market data GET /v2/stocks/bars (multi-symbol, paginated)."""

from __future__ import annotations

import json

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


def alpaca_data_fake(bars: dict | None = None, page_size: int = 2) -> LoopbackServer:
    """Serves `bars` in pages of `page_size` with next_page_token; checks key headers.

    `bars` is read on every request, so a test can append a new day's bars to it."""
    data = bars or BARS

    def stock_bars(query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        flat = [(s, b) for s in sorted(data) for b in data[s]]
        symbols = query["symbols"][0].split(",")
        start, end = query.get("start", [""])[0], query.get("end", ["~"])[0]
        rows = [(s, b) for s, b in flat if s in symbols and start[:10] <= b["t"][:10] < end[:10]]
        offset = int(query.get("page_token", ["0"])[0] or 0)
        page = rows[offset : offset + page_size]
        out: dict[str, list] = {}
        for s, b in page:
            out.setdefault(s, []).append(b)
        token = str(offset + page_size) if offset + page_size < len(rows) else None
        body = {"bars": out, "next_page_token": token}
        return 200, "application/json", json.dumps(body).encode()

    return LoopbackServer(routes={"/v2/stocks/bars": stock_bars})
