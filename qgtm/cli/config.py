"""Which config and data directory a command runs on, and `qgtm config`.

Every command that reads the config validates all of it here, before it does anything:
a bad value is one line naming the key (ConfigError), never a traceback from deep in
the engine. Commands that run the engine or its strategies (the terminal, the daemon,
backtests, `qgtm config`) also check what only the engine's libraries know: the
strategy names against the registry, the refresh cron against APScheduler.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from qgtm.cli import CliError
from qgtm.core.config import Config, ConfigError, check_tradeable, config_to_toml, load_config
from qgtm.core.paths import default_config_file, default_data_dir


def data_dir_of(args: argparse.Namespace) -> Path:
    """--data-dir, else $QGTM_DATA_DIR or the platform data dir (a directory, or not
    there yet: commands that write create it)."""
    data_dir = (getattr(args, "data_dir", None) or default_data_dir()).expanduser()
    if data_dir.exists() and not data_dir.is_dir():
        raise CliError(f"data dir {data_dir} is a file, not a directory")
    return data_dir


def load(args: argparse.Namespace, engine: bool = False) -> tuple[Config, Path]:
    """The validated config and the data dir; `engine` also checks it against the
    engine (`check_for_engine`, which imports every strategy: only commands that run
    them ask for it)."""
    explicit = getattr(args, "config", None)
    if explicit is not None and not explicit.exists():
        raise CliError(f"config file not found: {explicit}")
    config = load_config(explicit or default_config_file())
    check_tradeable(config)
    if engine:
        check_for_engine(config)
    return config, data_dir_of(args)


def check_for_engine(config: Config) -> None:
    """Every name in `[engine] strategies` is a registered strategy, and
    `[live] data_refresh_cron` is a crontab line the daemon's scheduler accepts."""
    from apscheduler.triggers.cron import CronTrigger

    from qgtm.engine.strategies.registry import STRATEGIES

    try:
        CronTrigger.from_crontab(config.live.data_refresh_cron)
    except ValueError as exc:
        raise ConfigError(f"[live] data_refresh_cron: {exc}") from None

    unknown = [name for name in config.engine.strategies if name not in STRATEGIES]
    if unknown:
        raise ConfigError(
            f"[engine] strategies: unknown {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(STRATEGIES))})"
        )


def run(args: argparse.Namespace) -> int:
    """`qgtm config`: the effective configuration as TOML (a valid config.toml)."""
    config, _ = load(args, engine=True)
    print(config_to_toml(config), end="")
    return 0
