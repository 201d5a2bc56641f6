"""Alpaca market data (alpaca-py StockHistoricalDataClient): daily and intraday bars.

Bars are requested with adjustment=all (split- and dividend-adjusted); alpaca-py follows
`next_page_token` until the last page. QGTM_ALPACA_DATA_BASE_URL points the client at
another host (alpaca-py's url_override), which is how the loopback fake is reached.
Keys: the same as the Alpaca broker's (qgtm.core.secrets.alpaca_credentials):
keyring service "qgtm", or APCA_API_KEY_ID / APCA_API_SECRET_KEY.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from qgtm.core.secrets import alpaca_credentials
from qgtm.engine.data.providers.base import (
    BAR_SCHEMA,
    ProviderError,
    RateLimiter,
    SchemaError,
    validate_frame,
)

log = logging.getLogger(__name__)

TIMEFRAMES = ("1Day", "1Hour", "15Min")


def _timeframe(spec: str):  # -> alpaca TimeFrame
    from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

    units = {"Day": TimeFrameUnit.Day, "Hour": TimeFrameUnit.Hour, "Min": TimeFrameUnit.Minute}
    for suffix, unit in units.items():
        if spec.endswith(suffix):
            return TimeFrame(int(spec[: -len(suffix)]), unit)
    raise ValueError(f"unknown timeframe {spec!r} (choose from {', '.join(TIMEFRAMES)})")


def bar_knowledge_time(start: datetime, timeframe: str) -> datetime:
    """When a bar is complete: the session close for daily bars, start + length intraday."""
    from qgtm.core import calendar

    if timeframe == "1Day":
        day = start.astimezone(calendar.NEW_YORK).date()
        return calendar.session_close(day).astimezone(UTC)
    minutes = {"1Hour": 60, "15Min": 15}[timeframe]
    return start + timedelta(minutes=minutes)


class AlpacaBarsProvider:
    """Split/dividend-adjusted bars of `symbols` at one timeframe."""

    name = "alpaca"
    kind = "bars"
    overlap_days = 3
    datasets = ("bars",)

    def __init__(
        self, symbols: tuple[str, ...], timeframe: str = "1Day", feed: str = "iex"
    ) -> None:
        from alpaca.data.historical import StockHistoricalDataClient

        if timeframe not in TIMEFRAMES:
            raise ValueError(
                f"unknown timeframe {timeframe!r} (choose from {', '.join(TIMEFRAMES)})"
            )
        self.symbols = symbols
        self.timeframe = timeframe
        self.feed = feed
        self._limiter = RateLimiter(0.3)  # 200 requests/minute on the free plan
        key_id, secret = alpaca_credentials()  # one place for Alpaca keys: trading and data
        self._client = StockHistoricalDataClient(
            key_id,
            secret,
            url_override=os.environ.get("QGTM_ALPACA_DATA_BASE_URL"),
        )
        self.datasets = (f"bars_{timeframe}",)

    def close(self) -> None:
        """Nothing to release: alpaca-py holds a requests session per call."""

    def fetch(self, since: date | None, until: date | None) -> pl.DataFrame:
        """Bars since..until (inclusive days, UTC), all symbols in one paginated request."""
        from alpaca.common.exceptions import APIError
        from alpaca.data.enums import Adjustment, DataFeed
        from alpaca.data.requests import StockBarsRequest

        start = datetime.combine(since or date(2016, 1, 1), time(0), tzinfo=UTC)
        end = datetime.combine((until or date.today()) + timedelta(days=1), time(0), tzinfo=UTC)
        request = StockBarsRequest(
            symbol_or_symbols=list(self.symbols),
            timeframe=_timeframe(self.timeframe),
            start=start,
            end=end,
            adjustment=Adjustment.ALL,
            feed=DataFeed(self.feed),
        )
        self._limiter.wait()
        try:
            barset = self._client.get_stock_bars(request)
        except APIError as exc:
            raise ProviderError(f"alpaca: bars request failed: {exc}") from None
        rows = []
        for symbol, bars in barset.data.items():
            for i, bar in enumerate(bars):
                if bar.close is None or bar.timestamp is None:
                    raise SchemaError(f"alpaca {symbol}: missing field 'c' or 't' in row {i}")
                rows.append(
                    (
                        symbol,
                        self.timeframe,
                        bar.timestamp,
                        bar.open,
                        bar.high,
                        bar.low,
                        bar.close,
                        bar.volume,
                        bar_knowledge_time(bar.timestamp, self.timeframe),
                    )
                )
        frame = pl.DataFrame(rows, schema=list(BAR_SCHEMA), orient="row").with_columns(
            pl.col("ts").cast(pl.Datetime("us", "UTC")),
            pl.col("knowledge_time").cast(pl.Datetime("us", "UTC")),
            *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")),
        )
        validate_frame(frame, BAR_SCHEMA, "alpaca bars")
        log.info("event=alpaca_fetched timeframe=%s rows=%d", self.timeframe, len(frame))
        return frame
