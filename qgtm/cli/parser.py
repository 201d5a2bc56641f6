"""The whole `qgtm` command line, declared without importing any command.

`qgtm --help` and `qgtm status` must answer in well under a second (issue 21), so
this module imports only the standard library and the light parts of `qgtm.core` and
`qgtm.publish.tiers`: no engine module, no duckdb, polars, numpy, scipy, Textual or
Rich. Each command's module is imported by `qgtm.cli.main` only when it runs.
tests/cli/test_startup.py fails if building the parser loads one of them.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from qgtm import __version__
from qgtm.core.config import DECISIONS, KILL_RESETS, REFRESH_SOURCES
from qgtm.publish.tiers import ROLES

KEY_NAMES = ("alpaca", "fred", "eia")
"""The API keys `qgtm keys set` stores in the OS keyring."""

ALPACA_HELP = (
    "Alpaca paper trading: store the paper account's keys with `qgtm keys set alpaca` (OS "
    "keyring; or set APCA_API_KEY_ID and APCA_API_SECRET_KEY), then run `QGTM_SOURCE=alpaca "
    'qgtm --daemon` (or source = "alpaca" in config.toml). The daemon fetches Alpaca daily '
    "bars, rebalances at 15:30 New York on Alpaca's paper endpoint and books fills from the "
    "trade-updates stream; `qgtm` in another shell attaches to it. mode=live also needs "
    "LIVE_TRADING_ENABLED=true in the environment."
)


def common(parser: argparse.ArgumentParser) -> None:
    """--data-dir and --config, accepted before or after any command."""
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
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _iso_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


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
    common(parser)
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
    common(status)
    status.add_argument("--json", action="store_true", help="print JSON for machines")
    common(sub.add_parser("strategies", help="list registered strategies"))
    _audit_parsers(sub)
    _risk_parsers(sub)
    common(
        sub.add_parser(
            "config", help="print the effective configuration as TOML (a valid config.toml)"
        )
    )
    _models_parsers(sub)
    data_sub = _data_parsers(sub)
    _keys_parsers(sub)
    _backtest_parser(sub)
    data_import = data_sub.add_parser(
        "import", help="validate a CSV/Parquet of daily bars and store it (source=user)"
    )
    common(data_import)
    data_import.add_argument("file", type=Path, help="CSV (Yahoo-style or Date,Price) or Parquet")
    data_import.add_argument("--symbol", help="symbol when the file has no Symbol column")
    _publish_parsers(sub)
    serve = sub.add_parser(
        "serve", help="serve the terminal to a browser (textual-serve; loopback by default)"
    )
    common(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    serve.add_argument(
        "--public",
        action="store_true",
        help="allow a non-loopback --host; anyone reaching it gets full control of the engine",
    )
    return parser


def _audit_parsers(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser(
        "audit", help="audit log: verify the hash chain and day seals, tail, search"
    )
    common(audit)
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="action", required=True)
    verify = audit_sub.add_parser(
        "verify", help="check every record's hash chain and each day's Merkle root"
    )
    common(verify)
    tail = audit_sub.add_parser("tail", help="show the newest records")
    common(tail)
    tail.add_argument("-n", type=int, default=20, help="how many records (default 20)")
    search = audit_sub.add_parser(
        "search", help="find records by event, actor, text and simulated date range"
    )
    common(search)
    search.add_argument("--event", help="event name, e.g. ORDER_FILLED")
    search.add_argument("--actor", help="who did it, e.g. engine, risk, recon, a user name")
    search.add_argument("--text", help="substring of the event or payload")
    search.add_argument("--since", type=_iso_date, help="first simulated date (YYYY-MM-DD)")
    search.add_argument("--until", type=_iso_date, help="last simulated date (YYYY-MM-DD)")
    search.add_argument("-n", type=int, default=50, help="at most this many (default 50)")


def _risk_parsers(sub: argparse._SubParsersAction) -> None:
    risk = sub.add_parser(
        "risk", help="kill switch: status, two-person reset, operators (engine not running)"
    )
    risk_sub = risk.add_subparsers(dest="risk_command", metavar="action", required=True)
    common(risk_sub.add_parser("status", help="kill tier, pending reset, operators, limits"))
    for action, who, text in (
        ("request-reset", "OPERATOR", "ask to return the kill tier to NORMAL (first operator)"),
        ("approve-reset", "OPERATOR", "approve another operator's reset request"),
        ("add-operator", "NAME", "register an operator (passphrase typed at a hidden prompt)"),
    ):
        action_parser = risk_sub.add_parser(action, help=text)
        action_parser.add_argument("operator", metavar=who)
        common(action_parser)


def _models_parsers(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="model registry: versions, stages, shadow runs")
    common(models)
    models_sub = models.add_subparsers(dest="models_command", metavar="action", required=True)
    models_list = models_sub.add_parser("list", help="every model version with its stage")
    common(models_list)
    models_list.add_argument("--strategy", default=None, help="only this strategy")
    models_show = models_sub.add_parser("show", help="one version: params, metrics, shadow")
    common(models_show)
    models_show.add_argument("model_id", help="e.g. tsmom@v2")


def _data_parsers(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    data = sub.add_parser("data", help="market and macro data: fetch from providers, import files")
    common(data)
    data_sub = data.add_subparsers(dest="data_command", metavar="action", required=True)
    fetch = data_sub.add_parser(
        "fetch", help="fetch one source into market.duckdb (incremental), then run quality checks"
    )
    common(fetch)
    fetch.add_argument("source", choices=REFRESH_SOURCES, help="data source")
    fetch.add_argument("--from", dest="since", type=_iso_day, help="first day (YYYY-MM-DD)")
    fetch.add_argument("--to", dest="until", type=_iso_day, help="last day (YYYY-MM-DD)")
    fetch.add_argument(
        "--timeframe", default="1Day", choices=("1Day", "1Hour", "15Min"), help="alpaca bars"
    )
    return data_sub


def _keys_parsers(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="API keys in the OS keyring (never in files)")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="action", required=True)
    key_set = keys_sub.add_parser("set", help="prompt for a key and store it in the keyring")
    key_set.add_argument("name", choices=KEY_NAMES, help="which key")


def _backtest_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "backtest",
        help="backtest a strategy (report, validation, Parquet artifacts); list, compare "
        "and rerun stored runs",
        description="Backtest on the live engine's components. While an engine runs on "
        "the data dir it holds market.duckdb; the backtest then runs on the sessions that "
        "engine has processed, borrowed over its attach socket.",
    )
    common(parser)
    parser.add_argument(
        "strategy", nargs="?", help="registered strategy name (see `qgtm strategies`)"
    )
    parser.add_argument("--from", dest="start", metavar="YYYY-MM-DD", help="first session")
    parser.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="last session")
    parser.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="parameter override"
    )
    parser.add_argument(
        "--sweep", metavar="K=A:B:STEP", help="sweep one parameter (vectorised runner)"
    )
    parser.add_argument(
        "--walk-forward",
        metavar="TRAIN:TEST[:anchored]",
        help="walk-forward over the sweep: train/test sessions, rolling unless ':anchored'",
    )
    parser.add_argument(
        "--cv",
        metavar="K[:EMBARGO]",
        help="purged k-fold cross-validation of the sweep's choice (AFML ch. 7): K folds, "
        "EMBARGO sessions after each test fold left out of training (default 1%% of them)",
    )
    parser.add_argument(
        "--impact",
        metavar="BPS",
        help="market impact in bps at 100%% of ADV, linear in participation "
        "(default: [backtest] impact_bps_at_full_adv, 0)",
    )
    parser.add_argument(
        "--borrow",
        metavar="BPS",
        help="yearly borrow fee in bps on the value of shorts, charged each close "
        "(default: [backtest] borrow_bps_annual, 0)",
    )
    parser.add_argument(
        "--kill-reset",
        choices=KILL_RESETS,
        help="how kill tiers step down: hold (never, as live with nobody to reset them) "
        "or daily (WARN/THROTTLE/NO_NEW last one session; FLATTEN holds) "
        "(default: [backtest] kill_reset, hold)",
    )
    parser.add_argument(
        "--benchmark",
        default=None,  # the engine's equal-weight benchmark (stats.EQUAL_WEIGHT)
        metavar="NAME",
        help="compare with: 'equal' (every symbol, equal weights; default), a symbol of "
        "the bars, or 'none' (beta, alpha, information ratio, tracking error)",
    )
    parser.add_argument(
        "--runner", choices=("event", "vector"), default="event", help="default: event"
    )
    parser.add_argument(
        "--data", type=Path, metavar="FILE", help="your own daily bars (CSV/Parquet)"
    )
    parser.add_argument(
        "--decision",
        choices=DECISIONS,
        default=None,
        help="live: the live engine's allocator and every risk check (default for one "
        "run); signal: inverse-vol weights and only the kill-tier, position, gross and "
        "net caps, a quick ranking booked by the compiled pass (default for --sweep and "
        "--all)",
    )
    parser.add_argument("--all", action="store_true", help="every strategy: a league table")
    parser.add_argument(
        "--runs", action="store_true", help="list the stored runs of this data dir, newest first"
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("RUN_A", "RUN_B"),
        help="two stored runs side by side: stats, config differences, return correlation",
    )
    parser.add_argument(
        "--rerun",
        metavar="RUN",
        help="run a stored run again from its config and check it reproduces (exit 1 if not)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON for machines (a statistic that is not finite, e.g. an infinite "
        "minimum track record, is null)",
    )


def _publish_parsers(sub: argparse._SubParsersAction) -> None:
    publish = sub.add_parser("publish", help="signal publisher: serve subscribers by tier")
    common(publish)
    publish.add_argument(
        "--publisher-config", type=Path, default=None, help="publisher TOML (tiers, channels)"
    )
    actions = publish.add_subparsers(dest="publish_command", metavar="action", required=True)
    serve = actions.add_parser("serve", help="run the publisher HTTP service (uvicorn)")
    serve.add_argument("--host", default=None, help="bind address (default from config)")
    serve.add_argument("--port", type=int, default=None, help="port (default from config)")
    add = actions.add_parser("add-subscriber", help="create a subscriber; prints its key once")
    add.add_argument("name")
    add.add_argument("--tier", required=True)
    add.add_argument("--role", choices=ROLES, default="subscriber")
    add.add_argument("--discord-webhook", default=None, metavar="ID/TOKEN")
    add.add_argument("--telegram-chat-id", default=None)
    add.add_argument("--email", default=None)
    rotate = actions.add_parser("rotate-key", help="replace a subscriber's key; prints it once")
    rotate.add_argument("subscriber_id", type=int)
    actions.add_parser("list", help="list subscribers (no keys)")
    replay = actions.add_parser("replay", help="re-deliver items issued in a time window")
    replay.add_argument("--since", required=True, help="ISO time, e.g. 2026-01-05T00:00+00:00")
    replay.add_argument("--until", default=None, help="ISO time (default: now)")
    replay.add_argument("--subscriber", type=int, default=None, help="only this subscriber id")
    actions.add_parser("status", help="items, subscribers by tier, deliveries by status")
