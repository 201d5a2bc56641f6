"""Loopback fake of FRED's /fred/series/observations (JSON, with ALFRED real-time periods)."""

from __future__ import annotations

import json

from tests.fakes.loopback import LoopbackServer

# (date, value, realtime_start, realtime_end): DGS10 with one revised observation.
VINTAGES = {
    "DGS10": [
        ("2024-01-02", "3.95", "2024-01-03", "9999-12-31"),
        ("2024-01-03", "3.91", "2024-01-04", "2024-01-09"),
        ("2024-01-03", "3.93", "2024-01-10", "9999-12-31"),  # revised a week later
        ("2024-01-04", "3.99", "2024-01-05", "9999-12-31"),
        ("2024-01-05", ".", "2024-01-08", "9999-12-31"),  # FRED's missing-value marker
    ],
}


def fred_fake(vintages: dict | None = None, page_size: int = 2) -> LoopbackServer:
    """Serves observations of `vintages` in FRED's JSON shape, paging at `page_size`."""
    data = vintages or VINTAGES

    def observations(query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        if query.get("api_key", [""])[0] != "test-fred-key":
            body = {
                "error_code": 400,
                "error_message": "Bad Request.  The value for variable api_key is not registered.",
            }
            return 400, "application/json", json.dumps(body).encode()
        series_id = query["series_id"][0]
        if series_id not in data:
            body = {"error_code": 400, "error_message": "Bad Request.  The series does not exist."}
            return 400, "application/json", json.dumps(body).encode()
        start = query.get("observation_start", ["1776-07-04"])[0]
        end = query.get("observation_end", ["9999-12-31"])[0]
        rows = [r for r in data[series_id] if start <= r[0] <= end]
        offset = int(query.get("offset", ["0"])[0])
        limit = min(int(query.get("limit", ["100000"])[0]), page_size)
        page = rows[offset : offset + limit]
        body = {
            "realtime_start": query["realtime_start"][0],
            "realtime_end": query["realtime_end"][0],
            "observation_start": start,
            "observation_end": end,
            "units": "lin",
            "output_type": 1,
            "file_type": "json",
            "order_by": "observation_date",
            "sort_order": "asc",
            "count": len(rows),
            "offset": offset,
            "limit": limit,
            "observations": [
                {"realtime_start": rs, "realtime_end": re, "date": d, "value": v}
                for d, v, rs, re in page
            ],
        }
        return 200, "application/json", json.dumps(body).encode()

    return LoopbackServer(routes={"/fred/series/observations": observations})
