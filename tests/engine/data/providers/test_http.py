from __future__ import annotations

import time

import pytest

from qgtm.engine.data.providers.base import (
    HttpPolicy,
    HttpSource,
    ProviderError,
    RateLimiter,
    SchemaError,
)
from tests.fakes.loopback import LoopbackServer


@pytest.fixture
def server():
    fake = LoopbackServer(
        routes={
            "/ok": lambda q: (200, "application/json", b'{"a": 1}'),
            "/html": lambda q: (200, "text/html", b"<html>down</html>"),
        }
    )
    yield fake
    fake.close()


def source(retries: int = 2) -> HttpSource:
    return HttpSource("test", HttpPolicy(min_interval_s=0, backoff_s=0, max_retries=retries))


def test_gives_up_after_max_retries_naming_status_and_path(server):
    server.failures.extend([503, 503, 503])
    with pytest.raises(ProviderError, match=r"HTTP 503 for /ok after 3 attempts"):
        source(retries=2).get_json(server.url + "/ok", {"api_key": "secret"})
    assert len(server.requests) == 3


def test_client_errors_are_not_retried_and_hide_the_query(server):
    with pytest.raises(ProviderError) as error:
        source().get(server.url + "/missing", {"api_key": "secret"})
    assert "HTTP 404 for /missing" in str(error.value) and "secret" not in str(error.value)
    assert len(server.requests) == 1


def test_non_json_body_is_a_schema_error(server):
    with pytest.raises(SchemaError, match="not JSON"):
        source().get_json(server.url + "/html")


def test_unreachable_host_is_retried_then_reported():
    with pytest.raises(ProviderError, match="ConnectError"):
        source(retries=1).get("http://127.0.0.1:9/ok")


def test_rate_limiter_spaces_requests():
    limiter = RateLimiter(0.05)
    started = time.monotonic()
    for _ in range(4):
        limiter.wait()
    assert time.monotonic() - started >= 0.15


def test_slow_server_times_out_and_is_retried():
    def slow(query):
        time.sleep(0.3)
        return 200, "application/json", b"{}"

    fake = LoopbackServer(routes={"/slow": slow})
    policy = HttpPolicy(timeout_s=0.05, min_interval_s=0, backoff_s=0, max_retries=1)
    try:
        with pytest.raises(ProviderError, match=r"ReadTimeout.*after 2 attempts"):
            HttpSource("test", policy).get(fake.url + "/slow")
    finally:
        fake.close()
