"""The one entry point: `qgtm` (terminal), `qgtm --daemon` (headless), `qgtm <command>`.

The package: `parser` declares the whole command line; one module per command area
(`run`: terminal, daemon and browser; `status`, `strategies`, `audit`, `risk`,
`config`, `models`, `data`, `keys`, `backtest`, `publish`) does the work and renders
what the engine returns. `main` imports a command's module only when that command
runs, so `qgtm --help` and `qgtm status` load no engine library (issue 21;
bench/startup.py measures it).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence


class CliError(RuntimeError):
    """An expected mistake: printed as one line, exit code 2."""


COMMANDS = {
    None: "run",  # no command: the terminal, or the daemon with --daemon
    "status": "status",
    "strategies": "strategies",
    "audit": "audit",
    "risk": "risk",
    "config": "config",
    "models": "models",
    "data": "data",
    "keys": "keys",
    "backtest": "backtest",
    "publish": "publish",
    "serve": "run:serve",
}
"""Each command's module under qgtm.cli (and function, default `run`)."""

EXPECTED_ERRORS = (
    ("qgtm.cli", "CliError"),
    ("qgtm.core.config", "ConfigError"),
    ("qgtm.core.universe", "UniverseError"),
    ("qgtm.engine.data.store", "MarketDataError"),
    ("qgtm.engine.data.user_bars", "UserBarsError"),
    ("qgtm.core.backtest", "BacktestError"),
    ("qgtm.core.secrets", "MissingCredentialsError"),
    ("qgtm.engine.lock", "EngineLockedError"),
)
"""Mistakes a user makes (bad file, missing key, engine already running): one line on
stderr and exit 2, never a traceback. Named, not imported: an exception of a class
whose module was never imported cannot have been raised, and importing them all would
load the engine for `qgtm --help`."""


def is_expected(exc: BaseException) -> bool:
    """True if `exc` is one of EXPECTED_ERRORS (looked up among loaded modules only)."""
    for module_name, class_name in EXPECTED_ERRORS:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(exc, getattr(module, class_name)):
            return True
    return False


def _dispatch(args: object) -> int:
    target = COMMANDS[getattr(args, "command", None)]
    module_name, _, function = target.partition(":")
    module = importlib.import_module(f"qgtm.cli.{module_name}")
    return getattr(module, function or "run")(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run, and turn expected errors into one line and a non-zero exit."""
    from qgtm.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a closed pipe fails here, where it is handled below
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`qgtm backtest --runs | head`): stop quietly, as
        # command-line tools do; point stdout at devnull so the exit flush cannot fail
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a killed writer
    except Exception as exc:
        if not is_expected(exc):
            raise
        print(f"qgtm: {exc}", file=sys.stderr)
        return 2
