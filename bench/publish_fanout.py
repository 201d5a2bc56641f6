"""Publisher fan-out benchmark: sustained delivery to 10,000 subscribers.

    .venv/bin/python bench/publish_fanout.py [--subscribers 10000] [--signals 5] [--interval 1]

A loopback Discord-webhook fake runs under uvicorn in a child process. The real
Dispatcher (SQLite delivery records, concurrency 16) fans each ingested signal out to
every premium subscriber's webhook while new signals keep arriving every `interval` s.
Reports deliveries per second and the p50/p99 ingest-to-delivery latency for premium,
next to a baseline in the same run: bare httpx POSTs of the same number of messages to
the same fake with the same concurrency (no store, no records) — so the ratio is the cost
of the durable, exactly-once delivery bookkeeping.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from qgtm.core.publication import stable_id
from qgtm.publish.clock import SystemClock
from qgtm.publish.delivery import Dispatcher
from qgtm.publish.settings import ChannelSettings, PublisherSettings
from qgtm.publish.store import PublisherStore

CONCURRENCY = 16


async def _webhook_app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """Minimal ASGI Discord webhook: reads the JSON body, answers 204."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _serve(port: int) -> None:
    import uvicorn

    uvicorn.run(_webhook_app, host="127.0.0.1", port=port, log_level="error", access_log=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _item(n: int) -> dict:
    now = datetime.now(UTC)
    return {
        "id": stable_id("bench", n, now.isoformat()),
        "kind": "signal",
        "issued_at": now.isoformat(),
        "payload": {
            "symbol": ["GLD", "SLV", "USO", "DBA", "CPER"][n % 5],
            "direction": "LONG",
            "weight": 0.1,
            "previous_weight": 0.0,
            "rationale": "tsmom: 12m return +9%",
            "decision_time": now.isoformat(),
            "strategy_set": "tsmom",
        },
    }


async def _publisher_run(base: str, subscribers: int, signals: int, interval: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="qgtm-bench-"))
    channels = ChannelSettings(discord_api=base + "/api")
    settings = PublisherSettings(db=tmp / "p.sqlite", channels=channels, poll_interval=0.02)
    store = PublisherStore(settings.db)
    store.add_many([(f"sub{i}", "premium", f"{i}/tok{i}") for i in range(subscribers)])
    dispatcher = Dispatcher(store, settings, SystemClock(), concurrency=CONCURRENCY)
    runner = asyncio.create_task(dispatcher.run())
    expected = subscribers * signals
    start = time.perf_counter()
    for n in range(signals):
        await asyncio.to_thread(store.ingest, [_item(n)], settings.tiers, datetime.now(UTC))
        dispatcher.wake()
        if n < signals - 1:
            await asyncio.sleep(interval)
    while True:
        done = store.conn.execute(
            "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
        ).fetchone()[0]
        if done >= expected:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    dispatcher.stop()
    await runner
    latencies = [
        r[0] - r[1]
        for r in store.conn.execute(
            "SELECT d.delivered_ts, i.received_ts FROM deliveries d JOIN items i "
            "ON i.id = d.item_id"
        )
    ]
    dupes = store.conn.execute(
        "SELECT count(*) FROM deliveries WHERE attempts != 1 OR status != 'delivered'"
    ).fetchone()[0]
    store.close()
    latencies.sort()
    return {
        "deliveries": len(latencies),
        "elapsed_s": elapsed,
        "deliveries_per_s": len(latencies) / elapsed,
        "p50_latency_s": statistics.median(latencies),
        "p99_latency_s": latencies[int(0.99 * (len(latencies) - 1))],
        "rows_not_delivered_exactly_once": dupes,
    }


async def _baseline(base: str, count: int) -> dict:
    body = {"content": "QGTM signal GLD LONG", "embeds": [{"title": "x", "description": "y"}]}
    semaphore = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def one(i: int) -> None:
            async with semaphore:
                r = await client.post(
                    f"{base}/api/webhooks/{i}/t", params={"wait": "true"}, json=body
                )
                r.raise_for_status()

        start = time.perf_counter()
        for chunk in range(0, count, 2000):
            await asyncio.gather(*(one(i) for i in range(chunk, min(count, chunk + 2000))))
        elapsed = time.perf_counter() - start
    return {"posts": count, "elapsed_s": elapsed, "posts_per_s": count / elapsed}


def main() -> None:
    """Run the benchmark and print a JSON report."""
    global CONCURRENCY
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--signals", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between signals")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    args = parser.parse_args()
    CONCURRENCY = args.concurrency
    port = _free_port()
    server = multiprocessing.Process(target=_serve, args=(port,), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.post(base + "/api/webhooks/0/t", json={"content": "warm"})
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        baseline = asyncio.run(_baseline(base, args.subscribers * args.signals))
        ours = asyncio.run(_publisher_run(base, args.subscribers, args.signals, args.interval))
    finally:
        server.terminate()
        server.join()
    report = {
        "subscribers": args.subscribers,
        "signals": args.signals,
        "interval_s": args.interval,
        "concurrency": CONCURRENCY,
        "publisher": ours,
        "baseline_bare_httpx": baseline,
        "throughput_ratio_vs_baseline": ours["deliveries_per_s"] / baseline["posts_per_s"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
