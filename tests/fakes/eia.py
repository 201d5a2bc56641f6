"""Loopback fake of EIA API v2 weekly data routes (response.data rows with period/value)."""

from __future__ import annotations

import json

from tests.fakes.loopback import LoopbackServer

CRUDE = [("2024-11-15", 430266), ("2024-11-22", 428448), ("2024-11-29", 423357)]
GAS = [("2024-11-15", 3969), ("2024-11-22", 3967), ("2024-11-29", 3937)]


def _route(series_id: str, rows: list, extra: dict) -> object:
    def handler(query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        if query.get("api_key", [""])[0] != "test-eia-key":
            body = {"error": "No api_key was supplied.", "code": "API_KEY_MISSING"}
            return 403, "application/json", json.dumps(body).encode()
        start = query.get("start", ["0000"])[0]
        end = query.get("end", ["9999"])[0]
        picked = [r for r in rows if start <= r[0] <= end]
        offset = int(query.get("offset", ["0"])[0])
        length = int(query.get("length", ["5000"])[0])
        data = [
            {"period": p, "series": series_id, "value": str(v), **extra}
            for p, v in picked[offset : offset + length]
        ]
        body = {
            "response": {
                "total": str(len(picked)),
                "dateFormat": "YYYY-MM-DD",
                "frequency": "weekly",
                "data": data,
                "description": "fake",
            },
            "request": {"command": "/v2/...", "params": {"frequency": "weekly"}},
            "apiVersion": "2.1.8",
        }
        return 200, "application/json", json.dumps(body).encode()

    return handler


def eia_fake(crude: list = CRUDE, gas: list = GAS) -> LoopbackServer:
    """Serves WCESTUS1 (crude stocks ex SPR) and the Lower-48 gas storage series."""
    return LoopbackServer(
        routes={
            "/v2/petroleum/stoc/wstk/data/": _route(
                "WCESTUS1",
                crude,
                {
                    "duoarea": "NUS",
                    "area-name": "U.S.",
                    "product": "EPC0",
                    "product-name": "Crude Oil",
                    "process": "SAX",
                    "process-name": "Ending Stocks Excluding SPR",
                    "units": "MBBL",
                },
            ),
            "/v2/natural-gas/stor/wkly/data/": _route(
                "NW2_EPG0_SWO_R48_BCF",
                gas,
                {
                    "duoarea": "R48",
                    "area-name": "Lower 48",
                    "process": "SWO",
                    "process-name": "Underground Storage - Working Gas",
                    "units": "BCF",
                },
            ),
        }
    )
