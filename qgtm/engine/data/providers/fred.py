"""FRED / ALFRED: macro series with every vintage, from fred/series/observations (JSON).

Each observation row of the JSON API carries realtime_start / realtime_end: the period
during which that value was the published one. Asking for the full real-time range
(1776-07-04 .. 9999-12-31) returns every vintage, so a revised value gets its own row,
known from its realtime_start (see release.fred_knowledge).
"""

from __future__ import annotations

import logging
from datetime import date, datetime

import polars as pl

from qgtm.engine.data.providers.base import (
    HttpPolicy,
    KeyedSeriesProvider,
    SchemaError,
    base_url,
    read_pages,
    series_frame,
)
from qgtm.engine.data.providers.release import fred_knowledge

log = logging.getLogger(__name__)

FRED_URL = "https://api.stlouisfed.org"
DATASET = "fred"
SERIES = {
    "DGS10": "10-year Treasury constant maturity yield, %",
    "DFII10": "10-year TIPS real yield, %",
    "T10YIE": "10-year breakeven inflation, %",
    "DTWEXBGS": "broad trade-weighted US dollar index",
    "IPMAN": "industrial production: manufacturing (PMI proxy; ISM PMI is not on FRED)",
}
REALTIME_ALL = ("1776-07-04", "9999-12-31")
PAGE_LIMIT = 100_000
MISSING = "."  # FRED's marker for "no value for this date"


class FredProvider(KeyedSeriesProvider):
    """FRED JSON API client; key from keyring ("qgtm", "fred_api_key") or QGTM_FRED_API_KEY."""

    name = "fred"
    overlap_days = 120
    datasets = (DATASET,)

    def __init__(self, series: tuple[str, ...] = tuple(SERIES), policy: HttpPolicy | None = None):
        url = base_url("fred", FRED_URL) + "/fred/series/observations"
        super().__init__("FRED", url, series, policy or HttpPolicy(min_interval_s=0.55))

    def fetch_series(self, series_id: str, since: date | None, until: date | None) -> pl.DataFrame:
        """All vintages of one series, paging with offset/limit."""

        def fetch_page(offset: int) -> tuple[list, int]:
            params = {
                "series_id": series_id,
                "api_key": self._key,
                "file_type": "json",
                "realtime_start": REALTIME_ALL[0],
                "realtime_end": REALTIME_ALL[1],
                "limit": PAGE_LIMIT,
                "offset": offset,
                "sort_order": "asc",
            }
            if since is not None:
                params["observation_start"] = since.isoformat()
            if until is not None:
                params["observation_end"] = until.isoformat()
            body = self._http.get_json(self.url, params)
            page = _observations(body, series_id)
            rows = [_parse_row(o, series_id, offset + i) for i, o in enumerate(page)]
            return rows, int(body.get("count", offset + len(page)))

        rows = read_pages(fetch_page)
        log.info("event=fred_fetched series=%s rows=%d", series_id, len(rows))
        return series_frame(rows, DATASET, series_id, f"fred {series_id}")


def _observations(body: object, series_id: str) -> list[dict]:
    if not isinstance(body, dict):
        raise SchemaError(f"fred {series_id}: response is not a JSON object")
    if "error_message" in body:
        raise SchemaError(f"fred {series_id}: {body['error_message']}")
    page = body.get("observations")
    if not isinstance(page, list):
        raise SchemaError(f"fred {series_id}: missing field 'observations'")
    return page


def _parse_row(obs: object, series_id: str, row: int) -> tuple[date, float | None, datetime]:
    if not isinstance(obs, dict):
        raise SchemaError(f"fred {series_id}: observation row {row} is not an object")
    for field in ("date", "value", "realtime_start"):
        if field not in obs:
            raise SchemaError(f"fred {series_id}: missing field {field!r} in row {row}")
    try:
        period = date.fromisoformat(obs["date"])
        known = fred_knowledge(date.fromisoformat(obs["realtime_start"]))
    except (TypeError, ValueError):
        raise SchemaError(
            f"fred {series_id}: bad date in row {row}: {obs['date']!r} / {obs['realtime_start']!r}"
        ) from None
    raw = obs["value"]
    if raw == MISSING:
        return period, None, known
    try:
        return period, float(raw), known
    except (TypeError, ValueError):
        raise SchemaError(f"fred {series_id}: field 'value' is {raw!r} in row {row}") from None
