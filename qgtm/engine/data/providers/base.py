"""What every data provider shares: the Provider protocol, keys, HTTP with limits and retries.

A provider turns one external source into a validated polars frame in one of two shapes:

* series (macro / alt data): dataset, series, period, value, knowledge_time;
* bars (market data): symbol, timeframe, ts (bar start), open, high, low, close, volume,
  knowledge_time (bar end: the session close for daily bars).

`knowledge_time` is the UTC instant the value became public; point-in-time joins
(qgtm.engine.data.pit) never let a decision see a row before it.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

import httpx
import polars as pl

from qgtm.core.secrets import SERVICE, read_secret

log = logging.getLogger(__name__)

# httpx logs every request URL at INFO, query string included; FRED and EIA carry the
# API key in the query string, so the library's request log must stay quiet.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)

KEYRING_SERVICE = SERVICE

SERIES_SCHEMA: dict[str, pl.DataType] = {
    "dataset": pl.String(),
    "series": pl.String(),
    "period": pl.Date(),
    "value": pl.Float64(),
    "knowledge_time": pl.Datetime("us", "UTC"),
}
BAR_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "timeframe": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "knowledge_time": pl.Datetime("us", "UTC"),
}


class ProviderError(RuntimeError):
    """A data source could not deliver: network, HTTP status, or an unusable response."""


class SchemaError(ProviderError):
    """A response does not have the published shape; the message names the field and row."""


class MissingKeyError(ProviderError):
    """The API key a provider needs is not set."""


def api_key(name: str, source_label: str) -> str:
    """The key `name` (e.g. "fred") from env QGTM_<NAME>_API_KEY (CI) or the OS keyring.

    Keyring entry: service "qgtm", username "<name>_api_key". Never logged.
    """
    stored = read_secret(f"{name}_api_key", f"QGTM_{name.upper()}_API_KEY")
    if not stored:
        raise MissingKeyError(
            f"{source_label} API key not set: run `qgtm keys set {name}` "
            f"(or set QGTM_{name.upper()}_API_KEY)"
        )
    return stored


def base_url(name: str, default: str) -> str:
    """The source's base URL; QGTM_<NAME>_BASE_URL points it elsewhere (loopback fakes)."""
    return os.environ.get(f"QGTM_{name.upper()}_BASE_URL", default).rstrip("/")


class RateLimiter:
    """At most one request every `min_interval` seconds (thread-safe)."""

    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next request may go out."""
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                time.sleep(self._next - now)
                now = self._next
            self._next = now + self.min_interval


RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """Timeouts, rate limit and retries of one source."""

    timeout_s: float = 30.0
    min_interval_s: float = 0.5
    max_retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0


class HttpSource:
    """GET with a rate limit, a timeout, and retry with exponential backoff on 429/5xx.

    Backoff before retry n (0-based) is min(backoff * 2**n, max_backoff) plus up to 10%
    jitter, or the server's Retry-After when it sends one. Errors name the path, never
    the query string (it can carry an API key).
    """

    def __init__(self, name: str, policy: HttpPolicy | None = None) -> None:
        self.name = name
        self.policy = policy or HttpPolicy()
        self._limiter = RateLimiter(self.policy.min_interval_s)
        self._client = httpx.Client(
            timeout=self.policy.timeout_s,
            follow_redirects=True,
            headers={"User-Agent": "qgtm-data/0.1"},
        )

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def get(self, url: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        """The response to GET url?params, retried on 429/5xx and transport errors."""
        path = httpx.URL(url).path
        attempt = 0
        while True:
            self._limiter.wait()
            try:
                response = self._client.get(url, params=dict(params or {}))
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}"
                retry_after = None
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in RETRY_STATUSES:
                    raise ProviderError(
                        f"{self.name}: HTTP {response.status_code} for {path}: "
                        f"{_brief(response.text)}"
                    )
                failure = f"HTTP {response.status_code}"
                retry_after = _retry_after(response)
            if attempt >= self.policy.max_retries:
                raise ProviderError(
                    f"{self.name}: {failure} for {path} after {attempt + 1} attempts"
                )
            delay = retry_after
            if delay is None:
                delay = min(self.policy.backoff_s * 2**attempt, self.policy.max_backoff_s)
                delay += random.uniform(0, delay * 0.1)
            log.warning(
                "event=http_retry source=%s path=%s failure=%r attempt=%d delay_s=%.2f",
                self.name,
                path,
                failure,
                attempt + 1,
                delay,
            )
            time.sleep(delay)
            attempt += 1

    def get_json(self, url: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET and decode JSON; a body that is not JSON is a SchemaError."""
        response = self.get(url, params)
        try:
            return response.json()
        except ValueError:
            path = httpx.URL(url).path
            raise SchemaError(
                f"{self.name}: response of {path} is not JSON: {_brief(response.text)}"
            ) from None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _brief(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def validate_frame(frame: pl.DataFrame, schema: Mapping[str, pl.DataType], source: str) -> None:
    """Raise SchemaError naming the first missing column, wrong type or null key field."""
    for column, dtype in schema.items():
        if column not in frame.columns:
            raise SchemaError(f"{source}: missing field {column!r}")
        if frame.schema[column] != dtype:
            raise SchemaError(
                f"{source}: field {column!r} has type {frame.schema[column]}, expected {dtype}"
            )
    for column in schema:
        if column == "value":
            continue  # a missing value is data, judged by the quality suite
        nulls = frame.with_row_index("row").filter(pl.col(column).is_null())
        if nulls.height:
            raise SchemaError(f"{source}: field {column!r} is empty in row {nulls['row'][0]}")


def read_pages(fetch_page: Callable[[int], tuple[list, int]]) -> list:
    """Every row of an offset-paged API: `fetch_page(offset)` returns (rows, total); pages
    are requested from offset 0 until `total` rows are read or a page comes back empty."""
    rows: list = []
    while True:
        page, total = fetch_page(len(rows))
        rows.extend(page)
        if not page or len(rows) >= total:
            return rows


def series_frame(
    rows: list[tuple[date, float | None, datetime]], dataset: str, series: str, source: str
) -> pl.DataFrame:
    """(period, value, knowledge_time) rows of one series as a validated SERIES_SCHEMA frame."""
    frame = pl.DataFrame(
        rows, schema=["period", "value", "knowledge_time"], orient="row"
    ).with_columns(
        pl.lit(dataset).alias("dataset"),
        pl.lit(series).alias("series"),
        pl.col("period").cast(pl.Date),
        pl.col("value").cast(pl.Float64),
        pl.col("knowledge_time").cast(pl.Datetime("us", "UTC")),
    )
    frame = frame.select(list(SERIES_SCHEMA))
    validate_frame(frame, SERIES_SCHEMA, source)
    return frame


class KeyedSeriesProvider:
    """Shared body of the API-keyed series sources (FRED, EIA): the key, one rate-limited
    HttpSource, `close`, and `fetch` as the concatenation of `fetch_series` over the
    configured `series`. Subclasses set name/overlap_days/datasets and `fetch_series`."""

    name: str
    kind = "series"
    overlap_days: int
    datasets: tuple[str, ...]

    def __init__(self, label: str, url: str, series: tuple[Any, ...], policy: HttpPolicy) -> None:
        self.series = series
        self.url = url
        self._key = api_key(self.name, label)
        self._http = HttpSource(self.name, policy)

    def close(self) -> None:
        """Release connections."""
        self._http.close()

    def fetch(self, since: date | None, until: date | None) -> pl.DataFrame:
        """Every configured series for periods since..until, one frame."""
        frames = [self.fetch_series(s, since, until) for s in self.series]
        return pl.concat(frames) if frames else pl.DataFrame(schema=SERIES_SCHEMA)

    def fetch_series(self, spec: Any, since: date | None, until: date | None) -> pl.DataFrame:
        """One configured series (SERIES_SCHEMA)."""
        raise NotImplementedError


class Provider(Protocol):
    """One external source behind one interface.

    `fetch(since, until)` returns a validated frame (SERIES_SCHEMA or BAR_SCHEMA, per
    `kind`) of the periods since..until inclusive (None = from the beginning / to today).
    Incremental refresh (qgtm.engine.data.providers.ingest) passes `since` from what the
    store already holds, minus `overlap_days` so late revisions are picked up.
    """

    name: str
    kind: str  # "series" or "bars"
    overlap_days: int
    datasets: tuple[str, ...]

    def fetch(self, since: date | None, until: date | None) -> pl.DataFrame:
        """Validated rows for periods since..until."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
