"""Expected mistakes are one line on stderr and exit 2, never a traceback (STYLE.md).

Config values are checked when the config loads, so `qgtm config` reports them before
anything starts, and the terminal and the daemon report them the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from qgtm.cli import main
from qgtm.engine.strategies.registry import STRATEGIES

BAD_VALUES = [
    ("engine", "strategies", '["nosuch"]', "unknown 'nosuch'"),
    ("engine", "speed", "-1", "speed must be >= 0"),
    ("engine", "speed", "nan", "expected a finite number"),
    ("engine", "initial_cash", '"lots"', "initial_cash must be a number"),
    ("engine", "gross_target", "0", "gross_target must be > 0"),
    ("execution", "broker", '"ib"', "broker must be one of paper, alpaca"),
    ("execution", "commission_per_share", '"-0.01"', "commission_per_share must be >= 0"),
    ("execution", "participation_cap", "2", "participation_cap must be in (0, 1]"),
    ("execution", "latency_ms", "1.5", "expected a whole number"),
    ("demo", "start", '"2030-01-01"', "must be before end"),
    ("tui", "refresh_hz", "0", "refresh_hz must be > 0"),
    ("publish", "batch_size", "0", "batch_size must be >= 1"),
    ("live", "metrics", '"maybe"', "expected true or false"),
    ("live", "metrics_port", "70000", "metrics_port must be in 0..65535"),
    ("live", "data_refresh_cron", '"every day"', "crontab line of 5 fields"),
    ("live", "data_refresh_cron", '"99 * * * *"', "data_refresh_cron"),
    ("learn", "pbo_splits", "3", "pbo_splits must be even"),
    ("learn", "max_pbo", "2", "max_pbo must be in [0, 1]"),
]


def write_config(tmp_path: Path, section: str, key: str, value: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"[{section}]\n{key} = {value}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("section", "key", "value", "message"), BAD_VALUES)
def test_a_bad_config_value_is_one_line_at_qgtm_config(
    tmp_path: Path, capsys, section: str, key: str, value: str, message: str
) -> None:
    config = write_config(tmp_path, section, key, value)
    assert main(["--config", str(config), "config"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("qgtm: ") and err.count("\n") == 1
    assert message in err and key in err


def test_an_unknown_strategy_names_the_known_ones(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path, "engine", "strategies", '["tsmom", "nosuch"]')
    assert main(["--config", str(config), "config"]) == 2
    err = capsys.readouterr().err
    assert "[engine] strategies: unknown 'nosuch'" in err
    assert all(name in err for name in STRATEGIES)


@pytest.mark.parametrize("start", [["--daemon", "--sessions", "1"], []])
def test_an_unknown_strategy_stops_the_start_with_one_line(
    tmp_path: Path, start: list[str]
) -> None:
    """Before: a 32-line traceback from TradingEngine; now the same line as `qgtm config`,
    from the daemon before it starts and from the terminal's engine build (the terminal
    paints first, headless here) before the engine writes a book."""
    config = write_config(tmp_path, "engine", "strategies", '["nosuch"]')
    headless = dict(os.environ, TEXTUAL_DRIVER="textual.drivers.headless_driver:HeadlessDriver")
    argv = ["--config", str(config), "--data-dir", str(tmp_path / "book"), *start]
    proc = subprocess.run(
        [sys.executable, "-m", "qgtm", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=headless,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "unknown 'nosuch'" in proc.stderr, proc.stderr
    assert not (tmp_path / "book" / "state.sqlite").exists()  # nothing was started


def test_a_config_that_cannot_be_read_is_one_line(tmp_path: Path, capsys) -> None:
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[tui]\ntheme = "caf\xe9"\n')
    for config, message in ((tmp_path, "cannot read it"), (latin1, "not UTF-8 text")):
        assert main(["--config", str(config), "config"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err


def test_bad_inputs_in_a_real_process_print_one_line_and_no_traceback(tmp_path: Path) -> None:
    nosuch = write_config(tmp_path, "engine", "strategies", '["nosuch"]')
    broken = tmp_path / "broken.toml"
    broken.write_text("[engine\nspeed = ", encoding="utf-8")
    data = ["--data-dir", str(tmp_path / "book")]
    cases = [
        ([*data, "--config", str(broken), "config"], "not valid TOML"),
        ([*data, "--config", str(tmp_path / "missing.toml"), "status"], "config file not found"),
        ([*data, "--config", str(nosuch), "--daemon", "--sessions", "1"], "unknown 'nosuch'"),
        ([*data, "data", "import", str(tmp_path / "missing.csv")], "missing.csv"),
        ([*data, "backtest", "nosuch"], "nosuch"),
        ([*data, "status"], "no book in"),
        (["--data-dir", str(broken), "--daemon", "--sessions", "1"], "is a file, not a directory"),
    ]
    for argv, message in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "qgtm", *argv],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 2, (argv, proc.stderr)
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("qgtm: "), proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr


def test_an_engine_that_cannot_be_built_ends_the_terminal_with_one_line(tmp_path: Path) -> None:
    """The engine is built in a worker thread while the terminal paints (issue 21); a
    build error still ends `qgtm` with one line and exit 2."""
    from qgtm.core.config import DemoConfig
    from qgtm.core.universe import load_universe
    from qgtm.engine.data.store import MarketStore

    demo = DemoConfig(seed=11, start=date(2008, 1, 2), end=date(2009, 6, 30))
    config = tmp_path / "config.toml"
    config.write_text(
        f'[demo]\nseed = {demo.seed}\nstart = "{demo.start}"\nend = "{demo.end}"\n',
        encoding="utf-8",
    )
    book = tmp_path / "book"
    book.mkdir()
    market = MarketStore(book)
    market.ensure_demo(load_universe(), demo)
    market.connection.execute("DELETE FROM bars WHERE symbol = 'GLD'")
    market.close()
    headless = dict(os.environ, TEXTUAL_DRIVER="textual.drivers.headless_driver:HeadlessDriver")
    proc = subprocess.run(
        [sys.executable, "-m", "qgtm", "--config", str(config), "--data-dir", str(book)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=headless,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("qgtm: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "no bars for GLD" in proc.stderr and "Traceback" not in proc.stderr
