"""The one entry point: `qgtm` (terminal), `qgtm --daemon` (headless), `qgtm <command>`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from qgtm import __version__
from qgtm.core.config import Config, ConfigError, check_tradeable, load_config
from qgtm.core.paths import default_config_file, default_data_dir
from qgtm.core.universe import UniverseError
from qgtm.engine.data.store import MarketDataError
from qgtm.engine.live.lock import EngineLockedError

LOG_FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


class CliError(RuntimeError):
    """An expected mistake: printed as one line, exit code 2."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=argparse.SUPPRESS,
        help="data directory of this book (default: $QGTM_DATA_DIR or the platform data dir)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help="config TOML file (default: $QGTM_CONFIG or config.toml in the platform config dir)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, so `qgtm --help` lists everything that exists."""
    parser = argparse.ArgumentParser(
        prog="qgtm",
        description=(
            "QGTM: systematic trading terminal for commodity ETFs. With no command it opens "
            "the terminal on the engine (paper trading on the built-in DEMO market by default)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"qgtm {__version__}")
    _common(parser)
    parser.add_argument(
        "--daemon", action="store_true", help="run the engine headless, logging to stdout"
    )
    parser.add_argument(
        "--sessions",
        type=int,
        default=None,
        metavar="N",
        help="stop after N sessions (daemon; useful for scripted runs)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        metavar="X",
        help="replay speed in sessions per second; 0 = as fast as possible",
    )
    sub = parser.add_subparsers(dest="command", metavar="command")
    status = sub.add_parser("status", help="print the book: session, equity, tier, positions")
    _common(status)
    strategies = sub.add_parser("strategies", help="list registered strategies")
    _common(strategies)
    audit = sub.add_parser("audit", help="audit log: verify the hash chain, show the tail")
    _common(audit)
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="action", required=True)
    verify = audit_sub.add_parser("verify", help="check every record's hash chain")
    _common(verify)
    tail = audit_sub.add_parser("tail", help="show the newest records")
    _common(tail)
    tail.add_argument("-n", type=int, default=20, help="how many records (default 20)")
    config = sub.add_parser("config", help="print the effective configuration")
    _common(config)
    serve = sub.add_parser(
        "serve", help="serve the terminal to a browser (textual-serve; loopback by default)"
    )
    _common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    serve.add_argument(
        "--public",
        action="store_true",
        help="allow a non-loopback --host; anyone reaching it gets full control of the engine",
    )
    return parser


def _load(args: argparse.Namespace) -> tuple[Config, Path]:
    config_path = getattr(args, "config", None) or default_config_file()
    explicit = getattr(args, "config", None)
    if explicit is not None and not explicit.exists():
        raise CliError(f"config file not found: {explicit}")
    config = load_config(config_path)
    check_tradeable(config)
    data_dir = getattr(args, "data_dir", None) or default_data_dir()
    return config, data_dir.expanduser()


def _with_speed(config: Config, speed: float | None) -> Config:
    if speed is None:
        return config
    from dataclasses import replace

    return replace(config, engine=replace(config.engine, speed=speed))


def _run_terminal(config: Config, data_dir: Path) -> int:
    from qgtm.engine.live.engine import TradingEngine
    from qgtm.engine.live.lock import EngineLock
    from qgtm.tui.app import QGTMApp
    from qgtm.tui.client import InProcessClient
    from qgtm.tui.keymap import UnknownBindingError
    from qgtm.tui.themes import UnknownThemeError

    data_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=data_dir / "qgtm.log", level=logging.INFO, format=LOG_FORMAT)
    with EngineLock(data_dir):
        engine = TradingEngine(config, data_dir)
        try:
            try:
                app = QGTMApp(
                    InProcessClient(engine),
                    theme_name=config.tui.theme,
                    keymap=config.tui.keymap,
                    data_dir=data_dir,
                )
            except (UnknownThemeError, UnknownBindingError) as exc:
                raise CliError(str(exc)) from None
            app.run()
        finally:
            engine.close()
    return 0


def _run_daemon(config: Config, data_dir: Path, sessions: int | None) -> int:
    from qgtm.engine.live.daemon import run_daemon

    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format=LOG_FORMAT)
    asyncio.run(run_daemon(config, data_dir, sessions))
    return 0


def _status(data_dir: Path) -> int:
    from qgtm.engine.state import StateStore

    if not (data_dir / "state.sqlite").exists():
        raise CliError(f"no book in {data_dir} yet: run `qgtm` or `qgtm --daemon` first")
    state = StateStore(data_dir)
    try:
        print(f"data dir     {data_dir}")
        print(f"last session {state.get_meta('last_session') or '-'}")
        curve = state.equity_curve(1)
        print(f"equity       {curve[-1][1]:,.2f}" if curve else "equity       -")
        print(f"kill tier    {state.get_meta('kill_tier') or 'NORMAL'}")
        print(f"sessions     {state.session_count()}")
        rows = state.conn.execute(
            "SELECT symbol, quantity, avg_price, last_price FROM positions ORDER BY symbol"
        ).fetchall()
        for symbol, qty, avg, last in rows:
            print(f"  {symbol:<5} {qty:>10,d}  avg {float(avg):>10.4f}  last {float(last):>10.4f}")
    finally:
        state.close()
    return 0


def _strategies() -> int:
    from qgtm.engine.strategies.registry import STRATEGIES

    for name, cls in sorted(STRATEGIES.items()):
        exposures = ", ".join(f"{k} {v:+.1f}" for k, v in cls.factor_exposures.items())
        print(f"{name:<12} {cls.family:<24} {exposures:<16} cap ${cls.capacity_usd / 1e6:,.0f}M")
        print(f"{'':<12} {cls.description} ({cls.reference})")
    return 0


def _audit(args: argparse.Namespace, data_dir: Path) -> int:
    from qgtm.engine.audit import AuditLog
    from qgtm.engine.state import StateStore

    if not (data_dir / "state.sqlite").exists():
        raise CliError(f"no audit log in {data_dir} yet")
    state = StateStore(data_dir)
    try:
        audit = AuditLog(state.conn)
        if args.audit_command == "verify":
            bad = audit.verify()
            count = state.conn.execute("SELECT count(*) FROM audit").fetchone()[0]
            if bad is None:
                print(f"audit chain intact: {count} records")
                return 0
            print(f"audit chain BROKEN at record {bad} (of {count})")
            return 1
        for record in reversed(audit.tail(args.n)):
            detail = " ".join(f"{k}={v}" for k, v in record.payload.items())
            print(
                f"{record.seq:>7} {record.sim_time} {record.event:<24} {record.actor:<8} {detail}"
            )
    finally:
        state.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
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


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "strategies":
        return _strategies()
    if args.command == "serve":
        return _serve(args)
    config, data_dir = _load(args)
    if args.command == "status":
        return _status(data_dir)
    if args.command == "audit":
        return _audit(args, data_dir)
    if args.command == "config":
        print(config)
        return 0
    config = _with_speed(config, args.speed)
    if args.daemon:
        return _run_daemon(config, data_dir, args.sessions)
    return _run_terminal(config, data_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, and turn expected errors into one line and a non-zero exit."""
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (CliError, ConfigError, UniverseError, MarketDataError, EngineLockedError) as exc:
        print(f"qgtm: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
