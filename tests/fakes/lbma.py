"""Loopback fake of the LBMA JSON price files (/json/gold_pm.json, /json/silver.json)."""

from __future__ import annotations

import json

from tests.fakes.loopback import LoopbackServer

GOLD = [("2024-01-02", [2064.4, 1624.3, 1870.5]), ("2024-01-03", [2034.1, 1609.2, 1862.0])]
SILVER = [("2024-01-02", [23.68, 0, 0]), ("2024-01-03", [23.08, 18.2, 21.1])]


def lbma_fake(gold: list = GOLD, silver: list = SILVER) -> LoopbackServer:
    """Serves both files as arrays of {"is_cms_locked", "d", "v": [USD, GBP, EUR]}."""

    def file(rows: list) -> object:
        body = json.dumps([{"is_cms_locked": 0, "d": d, "v": v} for d, v in rows]).encode()
        return lambda q: (200, "application/json", body)

    return LoopbackServer(
        routes={"/json/gold_pm.json": file(gold), "/json/silver.json": file(silver)}
    )
