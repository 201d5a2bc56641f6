"""The one entry point: `qgtm` (terminal), `qgtm --daemon` (headless), `qgtm <command>`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from qgtm import __version__
from qgtm.core.backtest import BacktestError
from qgtm.core.config import Config, ConfigError, check_tradeable, config_to_toml, load_config
from qgtm.core.paths import default_config_file, default_data_dir
from qgtm.core.universe import UniverseError
from qgtm.engine.data.store import MarketDataError
from qgtm.engine.data.user_bars import UserBarsError
from qgtm.engine.execution.keys import MissingCredentialsError
from qgtm.engine.live.lock import EngineLockedError
from qgtm.publish.cli import PublishCliError

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


def _iso_date(text: str) -> str:
    from datetime import date

    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


ALPACA_HELP = (
    "Alpaca paper trading: store the paper account's keys with `qgtm keys set alpaca` (OS "
    "keyring; or set APCA_API_KEY_ID and APCA_API_SECRET_KEY), then run `QGTM_SOURCE=alpaca "
    'qgtm --daemon` (or source = "alpaca" in config.toml). The daemon fetches Alpaca daily '
    "bars, rebalances at 15:30 New York on Alpaca's paper endpoint and books fills from the "
    "trade-updates stream; `qgtm` in another shell attaches to it. mode=live also needs "
    "LIVE_TRADING_ENABLED=true in the environment."
)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, so `qgtm --help` lists everything that exists."""
    parser = argparse.ArgumentParser(
        prog="qgtm",
        description=(
            "QGTM: systematic trading terminal for commodity ETFs. With no command it opens "
            "the terminal on the engine (paper trading on the built-in DEMO market by default); "
            "if a daemon already runs on the data dir, the terminal attaches to it instead."
        ),
        epilog=ALPACA_HELP,
    )
    parser.add_argument("--version", action="version", version=f"qgtm {__version__}")
    _common(parser)
    parser.add_argument(
        "--daemon",
        action="store_true",
        help=(
            "run the engine headless, logging to stdout: supervised tasks, recon every 60 s, "
            "watchdog, attach socket, Prometheus metrics if [live] metrics = true; with "
            "source=alpaca it trades on the wall clock (rebalance 15:30 New York on XNYS "
            "sessions, broker fills streamed in, data refresh on [live] data_refresh_cron)"
        ),
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
    audit = sub.add_parser(
        "audit", help="audit log: verify the hash chain and day seals, tail, search"
    )
    _common(audit)
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="action", required=True)
    verify = audit_sub.add_parser(
        "verify", help="check every record's hash chain and each day's Merkle root"
    )
    _common(verify)
    tail = audit_sub.add_parser("tail", help="show the newest records")
    _common(tail)
    tail.add_argument("-n", type=int, default=20, help="how many records (default 20)")
    risk = sub.add_parser(
        "risk", help="kill switch: status, two-person reset, operators (engine not running)"
    )
    risk_sub = risk.add_subparsers(dest="risk_command", metavar="action", required=True)
    _common(risk_sub.add_parser("status", help="kill tier, pending reset, operators, limits"))
    for action, who, text in (
        ("request-reset", "OPERATOR", "ask to return the kill tier to NORMAL (first operator)"),
        ("approve-reset", "OPERATOR", "approve another operator's reset request"),
        ("add-operator", "NAME", "register an operator (passphrase typed at a hidden prompt)"),
    ):
        action_parser = risk_sub.add_parser(action, help=text)
        action_parser.add_argument("operator", metavar=who)
        _common(action_parser)
    search = audit_sub.add_parser(
        "search", help="find records by event, actor, text and simulated date range"
    )
    _common(search)
    search.add_argument("--event", help="event name, e.g. ORDER_FILLED")
    search.add_argument("--actor", help="who did it, e.g. engine, risk, recon, a user name")
    search.add_argument("--text", help="substring of the event or payload")
    search.add_argument("--since", type=_iso_date, help="first simulated date (YYYY-MM-DD)")
    search.add_argument("--until", type=_iso_date, help="last simulated date (YYYY-MM-DD)")
    search.add_argument("-n", type=int, default=50, help="at most this many (default 50)")
    config = sub.add_parser(
        "config", help="print the effective configuration as TOML (a valid config.toml)"
    )
    _common(config)
    models = sub.add_parser("models", help="model registry: versions, stages, shadow runs")
    _common(models)
    models_sub = models.add_subparsers(dest="models_command", metavar="action", required=True)
    models_list = models_sub.add_parser("list", help="every model version with its stage")
    _common(models_list)
    models_list.add_argument("--strategy", default=None, help="only this strategy")
    models_show = models_sub.add_parser("show", help="one version: params, metrics, shadow")
    _common(models_show)
    models_show.add_argument("model_id", help="e.g. tsmom@v2")
    data_sub = _data_parsers(sub)
    _add_research_commands(sub, data_sub)
    from qgtm.publish.cli import add_parser as add_publish_parser

    add_publish_parser(sub, _common)
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


def _add_research_commands(
    sub: argparse._SubParsersAction, data_sub: argparse._SubParsersAction
) -> None:
    from qgtm.engine.backtest.commands import add_backtest_arguments

    backtest = sub.add_parser(
        "backtest",
        help="backtest a strategy (report, validation, Parquet artifacts); list, compare "
        "and rerun stored runs",
        description="Backtest on the live engine's components. While an engine runs on "
        "the data dir it holds market.duckdb; the backtest then runs on the sessions that "
        "engine has processed, borrowed over its attach socket.",
    )
    _common(backtest)
    add_backtest_arguments(backtest)
    data_import = data_sub.add_parser(
        "import", help="validate a CSV/Parquet of daily bars and store it (source=user)"
    )
    _common(data_import)
    data_import.add_argument("file", type=Path, help="CSV (Yahoo-style or Date,Price) or Parquet")
    data_import.add_argument("--symbol", help="symbol when the file has no Symbol column")


# ----- data providers and keys (issue 9) ---------------------------------------------
KEY_NAMES = ("alpaca", "fred", "eia")


def _iso_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _data_parsers(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    from qgtm.engine.data.providers.ingest import SOURCES

    data = sub.add_parser("data", help="market and macro data: fetch from providers, import files")
    _common(data)
    data_sub = data.add_subparsers(dest="data_command", metavar="action", required=True)
    fetch = data_sub.add_parser(
        "fetch", help="fetch one source into market.duckdb (incremental), then run quality checks"
    )
    _common(fetch)
    fetch.add_argument("source", choices=SOURCES, help="data source")
    fetch.add_argument("--from", dest="since", type=_iso_day, help="first day (YYYY-MM-DD)")
    fetch.add_argument("--to", dest="until", type=_iso_day, help="last day (YYYY-MM-DD)")
    fetch.add_argument(
        "--timeframe", default="1Day", choices=("1Day", "1Hour", "15Min"), help="alpaca bars"
    )
    keys = sub.add_parser("keys", help="API keys in the OS keyring (never in files)")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="action", required=True)
    key_set = keys_sub.add_parser("set", help="prompt for a key and store it in the keyring")
    key_set.add_argument("name", choices=KEY_NAMES, help="which key")
    return data_sub


def _data(args: argparse.Namespace, data_dir: Path) -> int:
    import duckdb

    from qgtm.engine.data.providers.base import ProviderError
    from qgtm.engine.data.providers.ingest import ingest, make_provider
    from qgtm.engine.data.store import MarketStore

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    if args.since and args.until and args.since > args.until:
        raise CliError(f"--from {args.since} is after --to {args.until}")
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store = MarketStore(data_dir)
    except duckdb.IOException as exc:
        raise CliError(f"market.duckdb is busy (is an engine running?): {exc}") from None
    try:
        from qgtm.core.universe import load_universe

        provider = make_provider(args.source, load_universe().symbols, args.timeframe)
        print(f"fetching {args.source} ...", flush=True)
        try:
            report = ingest(store, provider, args.since, args.until)
        finally:
            provider.close()
    except ProviderError as exc:
        raise CliError(str(exc)) from None
    finally:
        store.close()
    print(f"{args.source}: {report.rows} rows stored (from {report.since or 'start'})")
    for failure in report.failures[:20]:
        print(
            f"  {failure.severity.value:<8} {failure.dataset}:{failure.subject} "
            f"{failure.check} {failure.day} {failure.detail}"
        )
    if len(report.failures) > 20:
        print(f"  ... {len(report.failures) - 20} more quality failures")
    return 0


def _keys(args: argparse.Namespace) -> int:
    import getpass

    if args.name == "alpaca":
        return _alpaca_keys()

    from qgtm.core.secrets import SERVICE, KeyringUnavailableError, store_secret

    secret = getpass.getpass(f"{args.name} API key (input hidden): ").strip()
    if not secret:
        raise CliError("no key entered; nothing stored")
    try:
        store_secret(f"{args.name}_api_key", secret)
    except KeyringUnavailableError as exc:
        raise CliError(
            f"no usable OS keyring ({exc}); set QGTM_{args.name.upper()}_API_KEY instead"
        ) from None
    print(f"stored {args.name} key in the OS keyring (service {SERVICE!r})")
    return 0


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
    from qgtm.engine.live.inprocess import InProcessClient
    from qgtm.engine.live.lock import EngineLock
    from qgtm.tui.app import QGTMApp
    from qgtm.tui.keymap import UnknownBindingError
    from qgtm.tui.themes import UnknownThemeError

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
        engine = TradingEngine(config, data_dir)
        from qgtm.engine.live.daemon import install_live_commands
        from qgtm.engine.live.recon import ReconciliationEngine

        install_live_commands(engine, ReconciliationEngine(config.live))
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
    finally:
        lock.release()
    return 0


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
    QGTMApp(client, theme_name=config.tui.theme).run()
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


def _strategies(data_dir: Path | None = None) -> int:
    from qgtm.engine.features.pit_features import store_input_sources, summarise_inputs
    from qgtm.engine.strategies.registry import STRATEGIES

    sources = store_input_sources(data_dir)
    print(f"{len(STRATEGIES)} strategies")
    for name, cls in sorted(STRATEGIES.items(), key=lambda item: (item[1].family, item[0])):
        exposures = ", ".join(f"{k} {v:+.1f}" for k, v in cls.factor_exposures.items())
        print(f"{name:<18} {cls.family:<24} {exposures:<30} cap ${cls.capacity_usd / 1e6:,.0f}M")
        print(f"{'':<18} {cls.description} ({cls.reference})")
        print(f"{'':<18} regimes: {', '.join(cls.regimes)}")
        inputs = summarise_inputs({f: sources[f] for f in cls.features if f in sources})
        if inputs:
            print(f"{'':<18} inputs: {inputs}")
    return 0


def _audit(args: argparse.Namespace, data_dir: Path) -> int:
    from qgtm.engine.audit import AuditLog
    from qgtm.engine.state import StateStore

    if not (data_dir / "state.sqlite").exists():
        raise CliError(f"no audit log in {data_dir} yet")
    try:
        state = StateStore(data_dir)
    except sqlite3.DatabaseError as exc:
        if args.audit_command == "verify":
            print(f"audit chain BROKEN at the database file: {exc}")
            return 1
        raise CliError(f"cannot read {data_dir / 'state.sqlite'}: {exc}") from None
    try:
        audit = AuditLog(state.conn)
        if args.audit_command == "verify":
            result = audit.verify_all()
            if result.ok:
                print(
                    f"audit chain intact: {result.records} records, "
                    f"{result.sealed_days} sealed days"
                )
                return 0
            where = f"record {result.first_bad}" if result.first_bad else "the database file"
            print(f"audit chain BROKEN at {where}: {result.reason}")
            return 1
        if args.audit_command == "search":
            records = audit.search(
                args.event, args.actor, args.text, args.since, args.until, args.n
            )
        else:
            records = audit.tail(args.n)
        for record in reversed(records):
            detail = " ".join(f"{k}={v}" for k, v in record.payload.items())
            print(
                f"{record.seq:>7} {record.sim_time} {record.event:<24} {record.actor:<8} {detail}"
            )
    finally:
        state.close()
    return 0


def _models(args: argparse.Namespace, data_dir: Path) -> int:
    from qgtm.engine.audit import AuditLog
    from qgtm.engine.learn.registry import ModelRegistry
    from qgtm.engine.state import StateStore

    if not (data_dir / "state.sqlite").exists():
        raise CliError(f"no model registry in {data_dir} yet: run the engine first")
    state = StateStore(data_dir)
    try:
        registry = ModelRegistry(state.conn, AuditLog(state.conn), data_dir / "artifacts")
        if args.models_command == "list":
            for m in registry.list(args.strategy):
                window = f"{m.train_start}..{m.train_end}" if m.train_start else "defaults"
                print(f"{m.model_id:<22} {m.stage.value:<10} {m.created_session}  {window}")
            return 0
        try:
            model = registry.get(args.model_id)
        except KeyError as exc:
            raise CliError(str(exc.args[0])) from None
        print(f"{model.model_id}  stage {model.stage.value}  created {model.created_session}")
        print(f"  params   {model.params}")
        print(f"  metrics  {model.metrics}")
        print(f"  data     {model.data_hash or '-'}  artifact {model.artifact_sha256[:16]}")
        print(f"  artifact intact: {registry.verify_artifact(model)}")
    finally:
        state.close()
    return 0


def _risk(args: argparse.Namespace, config: Config, data_dir: Path) -> int:
    """Thin: prompts for the passphrase; the work is in qgtm.engine.risk.admin."""
    import getpass

    from qgtm.engine.risk.admin import RiskAdminError, offline_risk, status_lines
    from qgtm.engine.risk.operators import OperatorError

    action = args.risk_command
    passphrase = ""
    if action != "status":
        passphrase = getpass.getpass(f"passphrase for {args.operator}: ")
    if action == "add-operator" and getpass.getpass("again: ") != passphrase:
        raise CliError("the two passphrases differ; nothing was changed")
    try:
        with offline_risk(data_dir, config) as risk:
            if action == "status":
                print("\n".join(status_lines(risk)))
                return 0
            if action == "add-operator":
                risk.add_operator(args.operator, passphrase)
                print(f"operator {args.operator} added")
                return 0
            if action == "request-reset":
                result = risk.request_reset(args.operator, passphrase)
            else:
                result = risk.approve_reset(args.operator, passphrase)
    except (RiskAdminError, OperatorError) as exc:
        raise CliError(str(exc)) from None
    print(result.message)
    return 0 if result.ok else 1


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
        return _strategies((getattr(args, "data_dir", None) or default_data_dir()).expanduser())
    if args.command == "serve":
        return _serve(args)
    if args.command == "keys":
        return _keys(args)
    if args.command == "publish":
        from qgtm.publish.cli import run as run_publish

        data_dir = (getattr(args, "data_dir", None) or default_data_dir()).expanduser()
        return run_publish(args, data_dir)
    config, data_dir = _load(args)
    if args.command == "status":
        return _status(data_dir)
    if args.command == "audit":
        return _audit(args, data_dir)
    if args.command == "models":
        return _models(args, data_dir)
    if args.command == "risk":
        return _risk(args, config, data_dir)
    if args.command == "config":
        print(config_to_toml(config), end="")
        return 0
    if args.command == "backtest":
        from qgtm.engine.backtest.commands import backtest_command

        return backtest_command(args, config, data_dir)
    if args.command == "data" and args.data_command == "import":
        from qgtm.engine.backtest.commands import data_import_command

        return data_import_command(args, data_dir)
    if args.command == "data" and args.data_command == "fetch":
        return _data(args, data_dir)
    config = _with_speed(config, args.speed)
    if args.daemon:
        return _run_daemon(config, data_dir, args.sessions)
    return _run_terminal(config, data_dir)


def _alpaca_keys() -> int:
    import getpass

    from qgtm.core.secrets import KeyringUnavailableError
    from qgtm.engine.execution.keys import store_alpaca_credentials

    key_id = getpass.getpass("Alpaca key id: ")
    secret = getpass.getpass("Alpaca secret key: ")
    try:
        store_alpaca_credentials(key_id, secret)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    except KeyringUnavailableError as exc:
        raise CliError(
            f"no usable OS keyring ({exc}); set APCA_API_KEY_ID and APCA_API_SECRET_KEY instead"
        ) from None
    print("stored the Alpaca keys in the OS keyring (service qgtm)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, and turn expected errors into one line and a non-zero exit."""
    args = build_parser().parse_args(argv)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a closed pipe fails here, where it is handled below
        return code
    except (
        CliError,
        ConfigError,
        UniverseError,
        MarketDataError,
        EngineLockedError,
        MissingCredentialsError,
    ) as exc:
        print(f"qgtm: {exc}", file=sys.stderr)
        return 2
    except (BacktestError, UserBarsError) as exc:
        print(f"qgtm: {exc}", file=sys.stderr)
        return 2
    except PublishCliError as exc:
        print(f"qgtm: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`qgtm backtest --runs | head`): stop quietly, as
        # command-line tools do; point stdout at devnull so the exit flush cannot fail
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a killed writer


if __name__ == "__main__":
    sys.exit(main())
