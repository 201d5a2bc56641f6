"""The publisher's HTTP API (FastAPI): ingest, admin, subscriber feed, bot webhooks.

Auth: the engine signs ingest requests (see qgtm.core.publication); everyone else sends
`Authorization: Bearer <api key>`. Roles: admin (manages subscribers, receives owner
alerts) and subscriber (reads its tier's feed). Every keyed request passes a per-key
token bucket (`rate_per_minute`). Nothing is served before the tier's release time.
"""

# No `from __future__ import annotations`: FastAPI must resolve the local dependencies.

import asyncio
import hmac
import json
import threading
import time
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from qgtm.core.publication import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from qgtm.publish.bots import discord_interaction, telegram_update
from qgtm.publish.context import PublisherContext
from qgtm.publish.delivery import Dispatcher
from qgtm.publish.store import Subscriber


class SignalPayload(BaseModel):
    """A published target change (see qgtm.engine.outbox for what the engine sends)."""

    symbol: str = Field(min_length=1, max_length=16)
    direction: Literal["LONG", "SHORT", "FLAT"]
    weight: float = Field(ge=-10, le=10)
    previous_weight: float = Field(ge=-10, le=10)
    rationale: str = Field(max_length=2000)
    decision_time: str = Field(max_length=64)
    strategy_set: str = Field(max_length=200)


class AlertPayload(BaseModel):
    """An owner alert."""

    source: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=2000)
    at: str = Field(max_length=64)


class IngestItem(BaseModel):
    """One outbox item as the engine sends it; the payload must match the kind."""

    id: str = Field(min_length=8, max_length=64, pattern=r"^[0-9a-f]+$")
    kind: Literal["signal", "alert"]
    issued_at: AwareDatetime
    payload: dict[str, Any]

    @model_validator(mode="after")
    def _payload_matches_kind(self) -> "IngestItem":
        model = SignalPayload if self.kind == "signal" else AlertPayload
        self.payload = model.model_validate(self.payload).model_dump()
        return self


class IngestBody(BaseModel):
    """A batch of outbox items."""

    items: list[IngestItem] = Field(max_length=1000)


class IngestAck(BaseModel):
    """Ids stored now and ids already known; the engine marks both as sent."""

    accepted: list[str]
    duplicates: list[str]


class NewSubscriber(BaseModel):
    """Admin request to create a subscriber."""

    name: str = Field(min_length=1, max_length=100)
    tier: str
    role: Literal["admin", "subscriber"] = "subscriber"
    discord_webhook: str | None = Field(default=None, pattern=r"^[0-9]+/[A-Za-z0-9_\-]+$")
    telegram_chat_id: str | None = Field(default=None, pattern=r"^-?[0-9]+$")
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")


class CreatedKey(BaseModel):
    """A subscriber and its API key (shown only in this answer)."""

    subscriber: dict[str, Any]
    api_key: str


class TokenBucket:
    """Per-key rate limit: `rate` requests per minute, bursts up to `rate`."""

    def __init__(self, rate_per_minute: int) -> None:
        self.capacity = float(rate_per_minute)
        self.refill = rate_per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if allowed, else seconds until the next token."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.refill)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / self.refill
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0


def create_app(ctx: PublisherContext, run_dispatcher: bool = True) -> FastAPI:
    """The FastAPI application over `ctx`; the dispatcher runs in its event loop."""
    limiter = TokenBucket(ctx.settings.rate_per_minute)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        task = None
        if run_dispatcher:
            ctx.dispatcher = Dispatcher(
                ctx.store, ctx.settings, ctx.clock, telegram_token=ctx.telegram_token
            )
            task = asyncio.create_task(ctx.dispatcher.run())
        yield
        if task is not None and ctx.dispatcher is not None:
            ctx.dispatcher.stop()
            await task

    app = FastAPI(
        title="QGTM signal publisher",
        version="1.0",
        description="Tiered, delayed signal delivery. Keys are shown once and stored hashed.",
        lifespan=lifespan,
    )

    def caller(authorization: Annotated[str | None, Header()] = None) -> Subscriber:
        if not authorization or not authorization.startswith("Bearer "):
            raise HTTPException(401, "missing bearer API key")
        key = authorization.removeprefix("Bearer ").strip()
        sub = ctx.store.by_key(key)
        if sub is None:
            raise HTTPException(401, "unknown API key")
        wait = limiter.take(sub.key_prefix + str(sub.id))
        if wait > 0:
            raise HTTPException(429, "rate limit", headers={"Retry-After": f"{wait:.0f}"})
        return sub

    def admin(sub: Annotated[Subscriber, Depends(caller)]) -> Subscriber:
        if sub.role != "admin":
            raise HTTPException(403, "admin role required")
        return sub

    @app.post(
        "/v1/ingest",
        response_model=IngestAck,
        tags=["engine"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ingest_schema()}},
            }
        },
    )
    async def ingest(
        request: Request,
        x_qgtm_timestamp: Annotated[str | None, Header()] = None,
        x_qgtm_signature: Annotated[str | None, Header()] = None,
    ) -> IngestAck:
        """Store signed outbox items; repeats are acknowledged and ignored."""
        body = await request.body()
        problem = verify(
            ctx.secret,
            x_qgtm_timestamp,
            x_qgtm_signature,
            body,
            time.time(),
            ctx.settings.replay_window_s,
        )
        if problem:
            raise HTTPException(401, problem)
        try:
            parsed = IngestBody.model_validate_json(body)
        except ValueError as exc:
            raise HTTPException(422, f"bad ingest body: {str(exc)[:200]}") from None
        items = [i.model_dump(mode="json") for i in parsed.items]
        accepted, duplicates = await asyncio.to_thread(
            ctx.store.ingest, items, ctx.settings.tiers, ctx.clock.now()
        )
        if ctx.dispatcher is not None:
            ctx.dispatcher.wake()
        return IngestAck(accepted=accepted, duplicates=duplicates)

    @app.post("/v1/subscribers", response_model=CreatedKey, status_code=201, tags=["admin"])
    def add_subscriber(body: NewSubscriber, _: Annotated[Subscriber, Depends(admin)]) -> CreatedKey:
        """Create a subscriber; the answer holds its API key, which is never shown again."""
        if body.tier not in ctx.settings.tiers:
            raise HTTPException(422, f"unknown tier {body.tier!r}")
        try:
            sub, key = ctx.store.add_subscriber(**body.model_dump())
        except Exception as exc:  # sqlite3.IntegrityError: name taken
            raise HTTPException(409, f"cannot create subscriber: {exc}") from None
        return CreatedKey(subscriber=sub.public(), api_key=key)

    @app.get("/v1/subscribers", tags=["admin"])
    def list_subscribers(
        _: Annotated[Subscriber, Depends(admin)],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    ) -> list[dict[str, Any]]:
        """Subscribers, without keys or webhook tokens."""
        return [s.public() for s in ctx.store.subscribers(limit, offset)]

    @app.post("/v1/subscribers/{sub_id}/rotate-key", response_model=CreatedKey, tags=["admin"])
    def rotate(sub_id: int, _: Annotated[Subscriber, Depends(admin)]) -> CreatedKey:
        """Replace a subscriber's key; the old key stops working at once."""
        if not 0 < sub_id < 2**62:
            raise HTTPException(404, "no such subscriber")
        key = ctx.store.rotate_key(sub_id)
        sub = ctx.store.subscriber(sub_id)
        if key is None or sub is None:
            raise HTTPException(404, "no such subscriber")
        return CreatedKey(subscriber=sub.public(), api_key=key)

    @app.get("/v1/feed", tags=["subscriber"])
    def feed(
        sub: Annotated[Subscriber, Depends(caller)],
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[dict[str, Any]]:
        """Signals released to the caller's tier, oldest first, after sequence `after`."""
        return _views(ctx, sub, ctx.store.released(sub.tier, ctx.clock.now(), after, limit))

    @app.get("/v1/feed/stream", tags=["subscriber"])
    async def stream(
        sub: Annotated[Subscriber, Depends(caller)],
        after: Annotated[int, Query(ge=0, le=2**62)] = 0,
        max_events: Annotated[int, Query(ge=1, le=10**6)] = 10**6,
    ) -> StreamingResponse:
        """Server-sent events: each signal as it is released to the caller's tier."""

        async def events():  # type: ignore[no-untyped-def]
            last, sent = after, 0
            while sent < max_events:
                rows = await asyncio.to_thread(
                    ctx.store.released, sub.tier, ctx.clock.now(), last, 100
                )
                for view, row in zip(_views(ctx, sub, rows), rows, strict=True):
                    last = row[0]
                    sent += 1
                    yield f"id: {row[0]}\nevent: signal\ndata: {json.dumps(view)}\n\n"
                    if sent >= max_events:
                        return
                await asyncio.sleep(ctx.settings.poll_interval)

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/v1/status", tags=["public"])
    def status() -> dict[str, Any]:
        """Service health and counts (no subscriber data)."""
        return {"ok": True, "tiers": sorted(ctx.settings.tiers), **ctx.store.status()}

    @app.post("/discord/interactions", tags=["bots"])
    async def discord(
        request: Request,
        x_signature_ed25519: Annotated[str | None, Header()] = None,
        x_signature_timestamp: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        """Discord HTTP interactions: Ed25519-verified; PING and /latest /status /subscribe."""
        body = await request.body()
        status_code, answer = discord_interaction(
            ctx, body, x_signature_ed25519, x_signature_timestamp
        )
        return JSONResponse(answer, status_code=status_code)

    @app.post("/telegram/webhook", tags=["bots"])
    async def telegram(
        request: Request,
        x_telegram_bot_api_secret_token: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        """Telegram webhook: secret-token checked; /start <key>, /latest, /status."""
        expected = ctx.telegram_webhook_secret
        given = x_telegram_bot_api_secret_token or ""
        if not expected or not hmac.compare_digest(expected, given):
            raise HTTPException(401, "bad secret token")
        try:
            update = json.loads(await request.body())
        except ValueError:
            raise HTTPException(400, "update is not JSON") from None
        return JSONResponse(telegram_update(ctx, update))

    return app


def _ingest_schema() -> dict[str, Any]:
    """IngestBody as an inline OpenAPI schema (the body is read raw to check its HMAC)."""
    item = IngestItem.model_json_schema()
    item["properties"]["payload"] = {
        "anyOf": [SignalPayload.model_json_schema(), AlertPayload.model_json_schema()]
    }
    return {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "maxItems": 1000, "items": item}},
    }


def _views(ctx: PublisherContext, sub: Subscriber, rows: list[tuple]) -> list[dict[str, Any]]:
    tier = ctx.settings.tiers.get(sub.tier)
    if tier is None:
        return []
    return [
        {"seq": seq, **tier.view(item_id, datetime.fromisoformat(issued), payload)}
        for seq, item_id, issued, payload in rows
    ]


__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "PublisherContext", "create_app"]
