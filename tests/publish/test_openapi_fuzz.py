"""Schemathesis over the publisher's OpenAPI spec: no input makes a server error.

Bounded: a few examples per operation (the whole run stays well under 30 s). Calls carry
an admin key so the fuzzer reaches past authentication, and ingest bodies are signed with
the shared secret so generated items reach the store.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet

from qgtm.core.publication import sign
from qgtm.publish.app import create_app
from qgtm.publish.context import PublisherContext
from qgtm.publish.settings import PublisherSettings
from qgtm.publish.store import PublisherStore
from tests.publish.conftest import SECRET

_DB = Path(tempfile.mkdtemp(prefix="qgtm-fuzz-")) / "publisher.sqlite"
_STORE = PublisherStore(_DB)
_CTX = PublisherContext(PublisherSettings(db=_DB, rate_per_minute=10**6), _STORE, SECRET)
APP = create_app(_CTX, run_dispatcher=False)
_, ADMIN_KEY = _STORE.add_subscriber("fuzz-admin", "premium", role="admin")
_STORE.add_subscriber("fuzz-linked", "pro", discord_webhook="1/a", telegram_chat_id="5")

schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path="/v1/feed/stream")
HTTP = TestClient(APP)


@schema.parametrize()
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_a_server_error(case: schemathesis.Case) -> None:
    if case.path == "/v1/ingest":
        if isinstance(case.body, NotSet):
            body = b""
        elif isinstance(case.body, bytes):
            body = case.body
        else:
            body = json.dumps(case.body).encode()
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-QGTM-Timestamp": str(ts),
            "X-QGTM-Signature": sign(SECRET, ts, body),
        }
        response = HTTP.post("/v1/ingest", content=body, headers=headers)
        assert response.status_code < 500, response.text
        return
    case.call_and_validate(
        headers={"Authorization": f"Bearer {ADMIN_KEY}"}, checks=[not_a_server_error]
    )
