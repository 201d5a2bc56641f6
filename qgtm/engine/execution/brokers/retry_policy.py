"""Which requests alpaca-py may repeat on its own, set through its public constructor.

alpaca-py's `RESTClient.__init__` documents `retry_attempts`, `retry_wait_seconds` and
`retry_exception_codes`: a request answered with one of those HTTP codes is sent again
after the wait. Its default codes are 429 and 504. Repeating a POST /v2/orders after a
504 is a blind re-send (the gateway timed out; the order may have been placed), so
QGTM gives alpaca-py only the code that is always safe to repeat:

- 429: Alpaca refused the request before processing it (rate limit), so nothing exists;
  alpaca-py repeats it once, then the adapter's own backoff takes over.
- 5xx, timeouts and lost connections reach the adapter as errors. For reads it retries
  with exponential backoff; for an order it first looks the order up by its client
  order id and sends it again only if Alpaca has never seen it.

TradingClient and StockHistoricalDataClient do not forward these arguments, so the
policy sits in their constructor chain: `RetryPolicy` is a RESTClient subclass placed
between the client class and RESTClient in the MRO; it only adds the keyword arguments
RESTClient's constructor documents. No private attribute is touched.
"""

from __future__ import annotations

from typing import Any

import requests
from alpaca.common.exceptions import APIError
from alpaca.common.rest import RESTClient
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.trading.client import TradingClient

SAFE_RETRY_CODES = (429,)  # never 5xx: a POST answered 5xx may have been processed
LIBRARY_ATTEMPTS = 1  # alpaca-py's minimum (0 means "use the default of 3")


class RetryPolicy(RESTClient):
    """Cooperative constructor: hands alpaca-py the retry arguments for `policy`."""

    retry_wait_seconds: float = 0.5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("retry_attempts", LIBRARY_ATTEMPTS)
        kwargs.setdefault("retry_wait_seconds", self.retry_wait_seconds)
        kwargs.setdefault("retry_exception_codes", list(SAFE_RETRY_CODES))
        super().__init__(*args, **kwargs)


def trading_client(
    key_id: str, secret_key: str, *, paper: bool, url: str | None, wait_seconds: float
) -> TradingClient:
    """alpaca-py's TradingClient that repeats only 429s itself (once, after `wait_seconds`)."""

    class _Client(TradingClient, RetryPolicy):
        retry_wait_seconds = wait_seconds

    return _Client(key_id, secret_key, paper=paper, url_override=url or None)


def data_client(
    key_id: str, secret_key: str, *, url: str | None, wait_seconds: float
) -> StockHistoricalDataClient:
    """alpaca-py's StockHistoricalDataClient with the same policy (reads retry 5xx above)."""

    class _Client(StockHistoricalDataClient, RetryPolicy):
        retry_wait_seconds = wait_seconds

    return _Client(key_id, secret_key, url_override=url or None)


def is_transient(exc: Exception) -> bool:
    """429, 5xx and transport failures (timeouts, lost connections): worth another try."""
    if isinstance(exc, requests.RequestException):
        return True
    if isinstance(exc, APIError):
        status = exc.status_code
        return status is None or status == 429 or status >= 500
    return False
