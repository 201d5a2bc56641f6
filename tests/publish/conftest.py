"""A publisher on loopback: uvicorn in a thread, stoppable and restartable on one port."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from qgtm.publish.app import create_app
from qgtm.publish.clock import ManualClock
from qgtm.publish.context import PublisherContext
from qgtm.publish.settings import ChannelSettings, PublisherSettings
from qgtm.publish.store import PublisherStore

SECRET = "test-shared-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PublisherServer:
    """Starts/stops the real app under uvicorn; the store file survives restarts."""

    def __init__(self, ctx_factory, port: int) -> None:  # type: ignore[no-untyped-def]
        self.ctx_factory = ctx_factory
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None
        self.ctx: PublisherContext | None = None

    def start(self) -> None:
        self.ctx = self.ctx_factory()
        config = uvicorn.Config(
            create_app(self.ctx), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("publisher did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None and self.ctx is not None
        self.server.should_exit = True
        self.thread.join(10)
        self.ctx.store.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make_settings(tmp_path: Path, **channels: object) -> PublisherSettings:
    return PublisherSettings(
        db=tmp_path / "publisher.sqlite",
        poll_interval=0.05,
        channels=ChannelSettings(**channels),  # type: ignore[arg-type]
    )


@pytest.fixture
def publisher_factory(tmp_path: Path, clock: ManualClock):  # type: ignore[no-untyped-def]
    servers: list[PublisherServer] = []

    def build(settings: PublisherSettings, **ctx_kw: object) -> PublisherServer:
        def ctx_factory() -> PublisherContext:
            return PublisherContext(
                settings=settings,
                store=PublisherStore(settings.db),
                secret=SECRET,
                clock=clock,
                **ctx_kw,  # type: ignore[arg-type]
            )

        server = PublisherServer(ctx_factory, free_port())
        servers.append(server)
        return server

    yield build
    for server in servers:
        if server.server is not None and not server.server.should_exit:
            server.stop()
