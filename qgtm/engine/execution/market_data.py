"""Market data the OMS needs from a live venue: arrival price, window VWAP, ADV.

`AlpacaMarketData` reads Alpaca's Market Data API v2 through alpaca-py's
StockHistoricalDataClient (latest quote / latest trade / latest minute bar, minute and
daily bars). Every answer says where it came from (`source`), so a TCA row records
which benchmark it used; a request that fails or finds nothing returns None and the
caller falls back (ultimately to the decision price).

Benchmarks from minute bars b_i (volume v_i, bar VWAP vw_i, Alpaca's `vw` field):
  window VWAP V = sum(vw_i v_i) / sum(v_i) over the bars starting in [start, end);
  a bar without `vw` uses its typical price (h + l + c) / 3.
Arrival price: the NBBO mid (bid + ask) / 2 of the latest quote when both sides are
quoted, else the latest trade, else the latest minute bar's close.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, TypeVar

import requests
from alpaca.common.exceptions import APIError

from qgtm.engine.execution.brokers.retry_policy import data_client, is_transient

log = logging.getLogger(__name__)

T = TypeVar("T")
PRICE_QUANTUM = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class PricePoint:
    """A price and where it came from (e.g. "quote_mid", "last_trade", "minute_bar")."""

    price: Decimal
    source: str


@dataclass(frozen=True, slots=True)
class MinuteBar:
    """One intraday bar: start time, OHLC, volume and the bar's own VWAP (if reported)."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: float
    vwap: Decimal | None


class MarketData(Protocol):
    """What the OMS asks a live venue's data feed."""

    def arrival(self, symbol: str) -> PricePoint | None:
        """The market price now (see module docstring for the order of preference)."""
        ...

    def minute_bars(self, symbol: str, start: datetime, end: datetime) -> list[MinuteBar]:
        """Minute bars starting in [start, end), oldest first ([] when none or on error)."""
        ...

    def average_daily_volume(self, symbol: str, before: datetime, sessions: int) -> float | None:
        """Mean daily volume of the last `sessions` daily bars before `before`."""
        ...


def window_vwap(bars: Sequence[MinuteBar]) -> Decimal | None:
    """sum(vw_i v_i) / sum(v_i); None without volume."""
    volume = sum(b.volume for b in bars)
    if volume <= 0:
        return None
    notional = sum(
        (
            (b.vwap if b.vwap is not None else (b.high + b.low + b.close) / 3)
            * Decimal(str(b.volume))
            for b in bars
        ),
        Decimal(0),
    )
    return (notional / Decimal(str(volume))).quantize(PRICE_QUANTUM)


def _dec(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


class AlpacaMarketData:
    """MarketData over alpaca-py's StockHistoricalDataClient (see module docstring)."""

    def __init__(
        self,
        key_id: str,
        secret_key: str,
        *,
        url: str | None = None,
        feed: str = "iex",
        max_attempts: int = 3,
        backoff_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from alpaca.data.enums import DataFeed

        self.client = data_client(key_id, secret_key, url=url, wait_seconds=backoff_seconds)
        self.feed = DataFeed(feed)
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep

    def arrival(self, symbol: str) -> PricePoint | None:
        """Latest quote mid, else latest trade, else latest minute bar close."""
        from alpaca.data.requests import (
            StockLatestBarRequest,
            StockLatestQuoteRequest,
            StockLatestTradeRequest,
        )

        quote = self._safe(
            lambda: self.client.get_stock_latest_quote(
                StockLatestQuoteRequest(symbol_or_symbols=symbol, feed=self.feed)
            ).get(symbol)
        )
        if quote is not None and quote.bid_price > 0 and quote.ask_price >= quote.bid_price:
            mid = (Decimal(str(quote.bid_price)) + Decimal(str(quote.ask_price))) / 2
            return PricePoint(mid.quantize(PRICE_QUANTUM), "quote_mid")
        trade = self._safe(
            lambda: self.client.get_stock_latest_trade(
                StockLatestTradeRequest(symbol_or_symbols=symbol, feed=self.feed)
            ).get(symbol)
        )
        if trade is not None and trade.price > 0:
            return PricePoint(Decimal(str(trade.price)), "last_trade")
        bar = self._safe(
            lambda: self.client.get_stock_latest_bar(
                StockLatestBarRequest(symbol_or_symbols=symbol, feed=self.feed)
            ).get(symbol)
        )
        if bar is not None and bar.close > 0:
            return PricePoint(Decimal(str(bar.close)), "minute_bar")
        return None

    def minute_bars(self, symbol: str, start: datetime, end: datetime) -> list[MinuteBar]:
        """One-minute bars of `symbol` starting in [start, end)."""
        from alpaca.data.timeframe import TimeFrame

        bars = self._bars(symbol, TimeFrame.Minute, start, end)
        return [
            MinuteBar(
                b.timestamp,
                Decimal(str(b.open)),
                Decimal(str(b.high)),
                Decimal(str(b.low)),
                Decimal(str(b.close)),
                float(b.volume),
                _dec(b.vwap),
            )
            for b in bars
            if start <= b.timestamp < end
        ]

    def average_daily_volume(self, symbol: str, before: datetime, sessions: int) -> float | None:
        """Mean volume of the last `sessions` daily bars starting before `before`."""
        from alpaca.data.timeframe import TimeFrame

        start = before - timedelta(days=2 * sessions + 10)
        bars = [b for b in self._bars(symbol, TimeFrame.Day, start, before) if b.timestamp < before]
        volumes = [float(b.volume) for b in bars[-sessions:]]
        return sum(volumes) / len(volumes) if volumes else None

    # ----- internals -------------------------------------------------------------------
    def _bars(self, symbol: str, timeframe: object, start: datetime, end: datetime) -> list:
        from alpaca.data.requests import StockBarsRequest

        request = StockBarsRequest(
            symbol_or_symbols=symbol, timeframe=timeframe, start=start, end=end, feed=self.feed
        )
        barset = self._safe(lambda: self.client.get_stock_bars(request))
        if barset is None:
            return []
        return list(barset.data.get(symbol, []))

    def _safe(self, call: Callable[[], T]) -> T | None:
        """Run a read with backoff on 429/5xx/transport errors; None if it cannot answer."""
        for attempt in range(self.max_attempts):
            try:
                return call()
            except (APIError, requests.RequestException) as exc:
                if not is_transient(exc) or attempt == self.max_attempts - 1:
                    log.warning("event=alpaca_data_unavailable error=%s", type(exc).__name__)
                    return None
            except (KeyError, ValueError, TypeError) as exc:  # an answer we cannot read
                log.warning("event=alpaca_data_unreadable error=%r", str(exc))
                return None
            self._sleep(min(self.backoff_seconds * 2**attempt, 30.0))
        return None
