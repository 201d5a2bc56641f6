"""EIA API v2: weekly US crude oil stocks and working natural gas in storage.

Request: GET /v2/<route>/data/?frequency=weekly&data[0]=value&facets[series][]=<id>
&start=&end=&sort[0][column]=period&sort[0][direction]=asc&offset=&length=.
Response: {"response": {"total": N, "data": [{"period": "YYYY-MM-DD", "value": ..., ...}]}}.
knowledge_time: the report's release (release.eia_release: crude Wednesday 10:30 ET,
gas Thursday 10:30 ET; holiday weeks per the federal calendar rules documented there).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import polars as pl

from qgtm.engine.data.providers.base import (
    HttpPolicy,
    KeyedSeriesProvider,
    SchemaError,
    base_url,
    read_pages,
    series_frame,
)
from qgtm.engine.data.providers.release import eia_release

log = logging.getLogger(__name__)

EIA_URL = "https://api.eia.gov"
DATASET = "eia"
PAGE_LENGTH = 5000


@dataclass(frozen=True, slots=True)
class EiaSeries:
    """One weekly EIA series: API route, series id, our name, release weekday."""

    route: str
    series_id: str
    name: str
    release_weekday: int


SERIES = (
    EiaSeries("petroleum/stoc/wstk", "WCESTUS1", "crude_stocks_ex_spr_kbbl", 2),
    EiaSeries("natural-gas/stor/wkly", "NW2_EPG0_SWO_R48_BCF", "natgas_storage_l48_bcf", 3),
)


class EiaProvider(KeyedSeriesProvider):
    """EIA v2 client; key from keyring ("qgtm", "eia_api_key") or QGTM_EIA_API_KEY."""

    name = "eia"
    overlap_days = 28
    datasets = (DATASET,)

    def __init__(self, series: tuple[EiaSeries, ...] = SERIES, policy: HttpPolicy | None = None):
        url = base_url("eia", EIA_URL) + "/v2/"
        super().__init__("EIA", url, series, policy or HttpPolicy(min_interval_s=0.5))

    def fetch_series(self, spec: EiaSeries, since: date | None, until: date | None) -> pl.DataFrame:
        """One series, paging with offset/length until `total` rows are read."""

        def fetch_page(offset: int) -> tuple[list, int]:
            params: dict[str, object] = {
                "api_key": self._key,
                "frequency": "weekly",
                "data[0]": "value",
                "facets[series][]": spec.series_id,
                "sort[0][column]": "period",
                "sort[0][direction]": "asc",
                "offset": offset,
                "length": PAGE_LENGTH,
            }
            if since is not None:
                params["start"] = since.isoformat()
            if until is not None:
                params["end"] = until.isoformat()
            body = self._http.get_json(f"{self.url}{spec.route}/data/", params)
            page, total = _page(body, spec)
            return [_row(r, spec, offset + i) for i, r in enumerate(page)], total

        rows = read_pages(fetch_page)
        log.info("event=eia_fetched series=%s rows=%d", spec.series_id, len(rows))
        return series_frame(rows, DATASET, spec.name, f"eia {spec.series_id}")


def _page(body: object, spec: EiaSeries) -> tuple[list, int]:
    if not isinstance(body, dict):
        raise SchemaError(f"eia {spec.series_id}: response is not a JSON object")
    if "error" in body:
        raise SchemaError(f"eia {spec.series_id}: {body['error']}")
    response = body.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("data"), list):
        raise SchemaError(f"eia {spec.series_id}: missing field 'response.data'")
    try:
        total = int(response.get("total", len(response["data"])))
    except (TypeError, ValueError):
        raise SchemaError(f"eia {spec.series_id}: field 'response.total' is not a number") from None
    return response["data"], total


def _row(record: object, spec: EiaSeries, row: int) -> tuple:
    if not isinstance(record, dict):
        raise SchemaError(f"eia {spec.series_id}: data row {row} is not an object")
    for field in ("period", "value"):
        if field not in record:
            raise SchemaError(f"eia {spec.series_id}: missing field {field!r} in row {row}")
    try:
        period = date.fromisoformat(record["period"])
    except (TypeError, ValueError):
        raise SchemaError(
            f"eia {spec.series_id}: field 'period' is {record['period']!r} in row {row}"
        ) from None
    raw = record["value"]
    try:
        value = None if raw is None else float(raw)
    except (TypeError, ValueError):
        raise SchemaError(f"eia {spec.series_id}: field 'value' is {raw!r} in row {row}") from None
    return period, value, eia_release(period, spec.release_weekday)
