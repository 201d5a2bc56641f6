"""`qgtm` (the terminal on an in-process engine, or attached to a running daemon),
`qgtm --daemon` (the engine headless) and `qgtm serve` (the terminal in a browser)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from qgtm.cli import CliError
from qgtm.cli.config import load
from qgtm.core.config import Config

if TYPE_CHECKING:
    from qgtm.core.protocol import EngineClient
    from qgtm.engine.live.engine import TradingEngine
    from qgtm.tui.app import QGTMApp

LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def run(args: argparse.Namespace) -> int:
    """No command: the daemon with --daemon, else the terminal.

    The daemon checks its strategies (`check_for_engine`, which imports every strategy)
    before it starts. The terminal does not wait for that import before its first frame:
    attached, the daemon's own config governs; in process, the check runs first thing in
    the engine's build, so a bad name still ends `qgtm` with one line and no book."""
    config, data_dir = load(args, engine=args.daemon)
    config = _with_speed(config, args.speed)
    if args.daemon:
        return _run_daemon(config, data_dir, args.sessions)
    return _run_terminal(config, data_dir)


def _with_speed(config: Config, speed: float | None) -> Config:
    if speed is None:
        return config
    from dataclasses import replace

    return replace(config, engine=replace(config.engine, speed=speed))


def _run_terminal(config: Config, data_dir: Path) -> int:
    """The terminal on an in-process engine: the lock first (a second `qgtm` attaches
    instead), then the app, which paints while the engine is built in a worker thread
    (`_build_engine`); an error of the build ends the program as it did before."""
    from qgtm.engine.live.inprocess import InProcessClient
    from qgtm.engine.lock import EngineLock, EngineLockedError

    data_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=data_dir / "qgtm.log", level=logging.INFO, format=LOG_FORMAT)
    lock = EngineLock(data_dir)
    try:
        lock.acquire()
    except EngineLockedError:
        return _attach(config, data_dir)
    if not config.is_demo:
        lock.release()
        raise CliError(
            f"source={config.source.value} trades on the wall clock in the daemon: start "
            "`qgtm --daemon`, then run `qgtm` again to attach to it"
        )
    try:
        client = InProcessClient(factory=lambda: _build_engine(config, data_dir))
        try:
            app = _terminal_app(config, data_dir, client)
            app.run()
        finally:
            client.close()  # waits for a build still under way, then closes the engine
    finally:
        lock.release()
    if app.start_error is not None:
        raise app.start_error  # bad market data, say: one line from cli.main
    return app.return_code or 0  # a crash inside the app (Textual prints it) exits 1


def _build_engine(config: Config, data_dir: Path) -> TradingEngine:
    """The in-process engine with the daemon's live commands (runs in a worker thread,
    where DuckDB, Polars, Numba and the strategies load while the terminal paints)."""
    from qgtm.cli.config import check_for_engine
    from qgtm.engine.live.daemon import install_live_commands
    from qgtm.engine.live.engine import TradingEngine
    from qgtm.engine.live.recon import ReconciliationEngine

    check_for_engine(config)  # before the engine writes its book
    engine = TradingEngine(config, data_dir)
    install_live_commands(engine, ReconciliationEngine(config.live))
    return engine


def _terminal_app(config: Config, data_dir: Path, client: EngineClient) -> QGTMApp:
    """The terminal on `client`; a bad theme or keymap is one line."""
    from qgtm.tui.app import QGTMApp
    from qgtm.tui.keymap import UnknownBindingError
    from qgtm.tui.themes import UnknownThemeError

    try:
        return QGTMApp(
            client, theme_name=config.tui.theme, keymap=config.tui.keymap, data_dir=data_dir
        )
    except (UnknownThemeError, UnknownBindingError) as exc:
        raise CliError(str(exc)) from None


def _attach(config: Config, data_dir: Path) -> int:
    """Another engine owns the data dir: attach to its daemon's socket instead."""
    from qgtm.engine.live.attach import AttachError, SocketClient
    from qgtm.engine.live.control import socket_path
    from qgtm.tui.app import QGTMApp

    client = SocketClient(socket_path(data_dir))
    try:
        client.check_socket()
    except AttachError as exc:
        raise CliError(
            f"an engine already runs on {data_dir} and cannot be attached to ({exc})"
        ) from None
    logging.getLogger(__name__).info("event=attach socket=%s", client.path)
    app = QGTMApp(client, theme_name=config.tui.theme)
    app.run()
    if app.start_error is not None:
        raise app.start_error
    return app.return_code or 0  # a crash inside the app (Textual prints it) exits 1


def _run_daemon(config: Config, data_dir: Path, sessions: int | None) -> int:
    from qgtm.engine.live.daemon import run_daemon

    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format=LOG_FORMAT)
    asyncio.run(run_daemon(config, data_dir, sessions))
    return 0


def serve(args: argparse.Namespace) -> int:
    """`qgtm serve`: each browser tab runs `python -m qgtm.cli` (tui/serve.py)."""
    from qgtm.tui.serve import PublicBindRefusedError, check_host, serve

    try:
        check_host(args.host, args.public)
    except PublicBindRefusedError as exc:
        raise CliError(str(exc)) from None
    serve(
        args.host,
        args.port,
        args.public,
        getattr(args, "data_dir", None),
        getattr(args, "config", None),
    )
    return 0
