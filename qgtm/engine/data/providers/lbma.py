"""LBMA precious-metal auction prices (gold PM, silver) from the LBMA JSON price files.

Files: https://prices.lbma.org.uk/json/gold_pm.json and .../silver.json, each a JSON
array of {"d": "YYYY-MM-DD", "v": [USD, GBP, EUR]} (0 where a currency has no price).
The whole history comes in one file; since/until filter it. The free files are delayed
to midnight London (release.lbma_knowledge).
"""

from __future__ import annotations

import logging
from datetime import date

import polars as pl

from qgtm.engine.data.providers.base import (
    HttpPolicy,
    HttpSource,
    SchemaError,
    base_url,
    series_frame,
)
from qgtm.engine.data.providers.release import lbma_knowledge

log = logging.getLogger(__name__)

LBMA_URL = "https://prices.lbma.org.uk"
DATASET = "lbma"
FILES = {"gold_pm_usd": "gold_pm.json", "silver_usd": "silver.json"}


class LbmaProvider:
    """LBMA gold PM and silver prices in USD/oz."""

    name = "lbma"
    kind = "series"
    overlap_days = 7
    datasets = (DATASET,)

    def __init__(self, policy: HttpPolicy | None = None) -> None:
        self.url = base_url("lbma", LBMA_URL) + "/json/"
        self._http = HttpSource("lbma", policy or HttpPolicy(min_interval_s=1.0))

    def close(self) -> None:
        """Release connections."""
        self._http.close()

    def fetch(self, since: date | None, until: date | None) -> pl.DataFrame:
        """USD auction prices of both metals for days since..until."""
        frames = []
        for series, file_name in FILES.items():
            body = self._http.get_json(self.url + file_name)
            frames.append(series_frame(_rows(body, series), DATASET, series, "lbma"))
        frame = pl.concat(frames)
        if since is not None:
            frame = frame.filter(pl.col("period") >= since)
        if until is not None:
            frame = frame.filter(pl.col("period") <= until)
        log.info("event=lbma_fetched rows=%d", len(frame))
        return frame


def _rows(body: object, series: str) -> list[tuple]:
    if not isinstance(body, list):
        raise SchemaError(f"lbma {series}: response is not a JSON array")
    rows = []
    for i, record in enumerate(body):
        if not isinstance(record, dict) or "d" not in record or "v" not in record:
            raise SchemaError(f"lbma {series}: missing field 'd' or 'v' in row {i}")
        try:
            day = date.fromisoformat(record["d"])
            usd = record["v"][0]
        except (TypeError, ValueError, IndexError):
            raise SchemaError(f"lbma {series}: bad row {i}: {record!r}") from None
        value = float(usd) if usd not in (None, 0) else None
        rows.append((day, value, lbma_knowledge(day)))
    return rows
